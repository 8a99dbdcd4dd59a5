# tools/top.mk - tachyon-top, the live view of the current user's buses (tools/tachyon-top).
#   make top           build/tools/tachyon-top (needs the curses headers: make setup installs libncurses-dev)
#   make test-top      tests/top: buses seen with their pids and counts, a dead peer, hostile
#                      segments, the curses screen in tmux, another user's buses kept apart
#   make bench-stats   what counting costs: the library with and without -DTACHYON_NO_STATS,
#                      C streaming and the Python seed loop, alternating (bench/stats)
#
# `make` builds the tool when the curses headers are there, and says how to get
# them when they are not. `make install` installs it into $(PREFIX)/bin.

TOP_DIR     := tools/tachyon-top
TOP_BIN     := $(BUILD)/tools/tachyon-top
TOP_SRCS    := $(wildcard $(TOP_DIR)/*.c)
TOP_HDRS    := $(wildcard $(TOP_DIR)/*.h)
TOP_CFLAGS  := $(CSTD) $(OPT) -g $(WARN) -Wpedantic -Iinclude $(EXTRA_CFLAGS)
# Evaluated when used, so that headers installed by `make setup` in the same run count.
CURSES_CFLAGS = $(shell pkg-config --cflags ncurses 2>/dev/null)
CURSES_LIBS   = $(shell pkg-config --libs ncurses 2>/dev/null || echo -lncurses)
HAVE_CURSES   = $(shell printf '\043include <curses.h>\n' | $(CC) $(CURSES_CFLAGS) -E -x c - >/dev/null 2>&1 && echo yes)

TOP_TEST_BINS := $(BUILD)/tests/top/bus_peer $(BUILD)/tests/top/hostile
STATS_BENCH_DIR := $(BUILD)/bench/stats

.PHONY: top top-note test-top bench-stats install-top

ifeq ($(HAVE_CURSES),yes)
all: top
else
all: top-note
endif

top-note:
	@echo "note: tachyon-top not built: the curses headers are missing (make setup installs libncurses-dev)"

top: $(TOP_BIN)

$(TOP_BIN): $(TOP_SRCS) $(TOP_HDRS) include/tachyon.h $(BUILD)/libtachyon.a
	@mkdir -p $(dir $@)
	$(CC) $(TOP_CFLAGS) $(CURSES_CFLAGS) $(TOP_SRCS) $(BUILD)/libtachyon.a $(CURSES_LIBS) -o $@

# The hostile-segment helper writes headers by the wire layout (src/wire.h).
$(BUILD)/tests/top/%: tests/top/%.c include/tachyon.h src/wire.h $(BUILD)/libtachyon.a
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O2 -g -Wall -Wextra -Iinclude -Isrc $< $(BUILD)/libtachyon.a -o $@

install: install-top
install-top: lib
	@if [ -x $(TOP_BIN) ] || [ "$(HAVE_CURSES)" = yes ]; then \
		$(MAKE) --no-print-directory top && \
		install -d $(DESTDIR)$(PREFIX)/bin && install -m 755 $(TOP_BIN) $(DESTDIR)$(PREFIX)/bin/; \
	else echo "note: tachyon-top not installed: the curses headers are missing (make setup installs libncurses-dev)"; fi

# Setup (order-only, see the Makefile) installs ncurses and tmux first; the
# tool is built in the recipe so that it sees them.
test-top: lib
	@$(MAKE) --no-print-directory top $(TOP_TEST_BINS)
	cd tests/top && TACHYON_TOP=$(abspath $(TOP_BIN)) BUS_PEER=$(abspath $(BUILD)/tests/top/bus_peer) \
		HOSTILE=$(abspath $(BUILD)/tests/top/hostile) timeout 600 $(PY) -m pytest -q -p no:cacheprovider .

# The same library without the per-message counting, its C benchmark and
# the Python extension built from it; bench/stats/run.py alternates them
# with the default build.
$(STATS_BENCH_DIR)/nostats/libtachyon.a: $(LIB_SRCS) $(LIB_HDRS)
	@$(MAKE) --no-print-directory BUILD=$(STATS_BENCH_DIR)/nostats EXTRA_CFLAGS=-DTACHYON_NO_STATS lib

$(STATS_BENCH_DIR)/stream-%: bench/stats/stream.c bench/bench_common.h include/tachyon.h
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O2 -g -Wall -Wextra -Iinclude -Ibench $< $(LIB_$*) -lpthread -o $@

LIB_on  = $(BUILD)/libtachyon.a
LIB_off = $(STATS_BENCH_DIR)/nostats/libtachyon.a
$(STATS_BENCH_DIR)/stream-on: $(BUILD)/libtachyon.a
$(STATS_BENCH_DIR)/stream-off: $(STATS_BENCH_DIR)/nostats/libtachyon.a

bench-stats: lib $(STATS_BENCH_DIR)/stream-on $(STATS_BENCH_DIR)/stream-off
	timeout 3600 $(PY) bench/stats/run.py --out $(STATS_BENCH_DIR) \
		--stream-on $(STATS_BENCH_DIR)/stream-on --stream-off $(STATS_BENCH_DIR)/stream-off

TEST_TARGETS  += test-top
BENCH_TARGETS += bench-stats
