# tools/tools.mk - programs over the public C API (tools/).
#   make tools          build/tools/tachyon-bridge (needs libnats: make setup installs it)
#   make test-bridge    the bridge end to end through a local nats-server (tests/bridge)
#   make bench-bridge   bridge throughput and latency beside nats-py and NATS alone (bench/bridge)
#
# `make` builds the tool too when libnats is there, and says how to get it
# when it is not. `make install` installs it into $(PREFIX)/bin when built.

BRIDGE_DIR    := tools/tachyon-bridge
BRIDGE_BIN    := $(BUILD)/tools/tachyon-bridge
BRIDGE_SRCS   := $(wildcard $(BRIDGE_DIR)/*.c)
BRIDGE_HDRS   := $(wildcard $(BRIDGE_DIR)/*.h)
BRIDGE_CFLAGS := $(CSTD) $(OPT) -g $(WARN) -Wpedantic -Iinclude $(EXTRA_CFLAGS)
# Evaluated when used, so a libnats installed by `make setup` in the same run counts.
NATS_CFLAGS    = $(shell pkg-config --cflags libnats 2>/dev/null)
NATS_LIBS      = $(shell pkg-config --libs libnats 2>/dev/null || echo -lnats)
HAVE_LIBNATS   = $(shell { pkg-config --exists libnats 2>/dev/null || test -f /usr/include/nats/nats.h; } && echo yes)

BRIDGE_TEST_BIN := $(BUILD)/tests/bridge/tick_reader
BRIDGE_BENCH_BIN := $(BUILD)/bench/bridge/paced_producer
NATS_FLOOR_BIN   := $(BUILD)/bench/bridge/nats_floor

.PHONY: tools tools-note test-bridge bench-bridge install-tools

ifeq ($(HAVE_LIBNATS),yes)
all: tools
else
all: tools-note
endif

tools-note:
	@echo "note: tachyon-bridge not built: libnats is missing (make setup installs it: libnats-dev)"

tools: $(BRIDGE_BIN)

$(BRIDGE_BIN): $(BRIDGE_SRCS) $(BRIDGE_HDRS) $(BUILD)/libtachyon.a
	@mkdir -p $(dir $@)
	$(CC) $(BRIDGE_CFLAGS) $(NATS_CFLAGS) $(BRIDGE_SRCS) $(BUILD)/libtachyon.a $(NATS_LIBS) -lpthread -o $@

$(BRIDGE_TEST_BIN): tests/bridge/tick_reader.c include/tachyon.h $(BUILD)/libtachyon.a
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O2 -g -Wall -Wextra -Iinclude $< $(BUILD)/libtachyon.a -o $@

$(BRIDGE_BENCH_BIN): bench/bridge/paced_producer.c bench/bench_common.h include/tachyon.h $(BUILD)/libtachyon.a
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O2 -g -Wall -Wextra -Wno-unused-function -Iinclude -Ibench $< $(BUILD)/libtachyon.a -o $@

$(NATS_FLOOR_BIN): bench/bridge/nats_floor.c bench/bench_common.h
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O2 -g -Wall -Wextra -Wno-unused-function -Ibench $(NATS_CFLAGS) $< $(NATS_LIBS) -lpthread -o $@

install: install-tools
install-tools: lib
	@if [ -x $(BRIDGE_BIN) ] || [ "$(HAVE_LIBNATS)" = yes ]; then \
		$(MAKE) --no-print-directory tools && \
		install -d $(DESTDIR)$(PREFIX)/bin && install -m 755 $(BRIDGE_BIN) $(DESTDIR)$(PREFIX)/bin/; \
	else echo "note: tachyon-bridge not installed: libnats is missing (make setup installs it)"; fi

# Setup (order-only, see the Makefile) installs nats-server and libnats
# first; the tool is built in the recipe so that it sees them.
test-bridge: lib python-install
	@$(MAKE) --no-print-directory tools $(BRIDGE_TEST_BIN)
	cd tests/bridge && BRIDGE=$(abspath $(BRIDGE_BIN)) TICK_READER=$(abspath $(BRIDGE_TEST_BIN)) \
		timeout 600 $(PY) -m pytest -q -p no:cacheprovider .

bench-bridge: lib python-install
	@$(MAKE) --no-print-directory tools $(BRIDGE_TEST_BIN) $(BRIDGE_BENCH_BIN) $(NATS_FLOOR_BIN)
	timeout 1800 $(PY) bench/bridge/run.py --bridge $(BRIDGE_BIN) --reader $(BRIDGE_TEST_BIN) \
		--paced $(BRIDGE_BENCH_BIN) --floor $(NATS_FLOOR_BIN) --out $(BUILD)/bench/bridge

TEST_TARGETS  += test-bridge
BENCH_TARGETS += bench-bridge
