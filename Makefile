# Tachyon: one entry point for building, testing, benchmarking and the demo.
#   make            build the C library (build/libtachyon.{so,a})
#   make install    headers, libraries and tachyon.pc under PREFIX
#   make test       every test in the repository (C, sanitizers, Python, Rust, cross-language)
#   make bench      the benchmarks (run them on an otherwise idle machine)
#   make demo       the seed job: Python producer -> Rust consumer
#   make setup      what test, bench and demo run first: missing Debian
#                   packages, and the project's Python environment .venv
#
# Options: CC=clang, OPT="-O3 -march=native", PREFIX, DESTDIR.

CC      ?= cc
PREFIX  ?= /usr/local
OPT     ?= -O2
BUILD   ?= build
VENV    ?= .venv
# The project's Python (scripts/setup.sh creates it); the system Python is never written to.
PY      := $(abspath $(VENV))/bin/python
VERSION := 0.1.0
SOVER   := 0

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CSTD    := -std=c11
CFLAGS_LIB := $(CSTD) $(OPT) -g $(WARN) -fPIC -fvisibility=hidden -Iinclude -Isrc $(EXTRA_CFLAGS)

LIB_SRCS := src/state.c src/shm.c src/socket.c src/handshake.c src/attach.c src/notify.c src/inspect.c src/ring.c \
            src/wait.c src/bus.c src/rpc.c src/fanout.c src/fanin.c
LIB_HDRS := include/tachyon.h src/wire.h src/barrier.h src/internal.h src/ring.h src/state.h src/futex.h src/clock.h src/fan.h src/fan_wire.h
LIB_OBJS := $(LIB_SRCS:src/%.c=$(BUILD)/obj/%.o)

.PHONY: all lib setup test test-suites test-c test-sanitize test-tsan bench demo install clean fuzz soak help

all: lib

lib: $(BUILD)/libtachyon.so $(BUILD)/libtachyon.a

$(BUILD)/obj/%.o: src/%.c $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_LIB) -c $< -o $@

$(BUILD)/libtachyon.so: $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,libtachyon.so.$(SOVER) -o $@ $(LIB_OBJS)
	ln -sf libtachyon.so $(BUILD)/libtachyon.so.$(SOVER)

$(BUILD)/libtachyon.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $(LIB_OBJS)

install: lib
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/tachyon.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(BUILD)/libtachyon.so $(DESTDIR)$(PREFIX)/lib/libtachyon.so.$(VERSION)
	ln -sf libtachyon.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libtachyon.so.$(SOVER)
	ln -sf libtachyon.so.$(SOVER) $(DESTDIR)$(PREFIX)/lib/libtachyon.so
	install -m 644 $(BUILD)/libtachyon.a $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' tachyon.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/tachyon.pc

# ---- the parts -----------------------------------------------------------------
# Each part adds its targets to TEST_TARGETS / BENCH_TARGETS / FUZZ_TARGETS.
TEST_TARGETS  :=
BENCH_TARGETS :=
include tests/tests.mk
-include bench/bench.mk
-include bench/compare/compare.mk
-include fuzz/fuzz.mk
-include bindings/python/python.mk
-include bindings/rust/rust.mk
-include examples/examples.mk
-include tools/tools.mk
-include tools/top.mk
-include examples/quickstart/quickstart.mk

# ---- everything ----------------------------------------------------------------
# Set-up runs once, before anything that needs a package or the venv.
setup:
	@VENV=$(VENV) bash scripts/setup.sh

$(TEST_TARGETS) $(BENCH_TARGETS) demo: | setup

# The suites run with a temporary directory of their own (TMPDIR), which must
# be empty again at the end, and must leave git status as they found it.
test:
	@bash scripts/test-run.sh $(MAKE) --no-print-directory test-suites

test-suites: $(TEST_TARGETS)
	@echo "make test: all suites passed ($(TEST_TARGETS))"

bench: $(BENCH_TARGETS)

demo: python-install
	@PYTHON=$(PY) bash examples/python_producer_rust_consumer/run_demo.sh

clean:
	rm -rf $(BUILD)

help:
	@sed -n '1,12p' Makefile
