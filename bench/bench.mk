# Native C benchmarks: round-trip latency against the cache-line floor, and
# streaming throughput by payload size. They print figures (and RESULT lines
# for bench/compare/run.py), also kept in build/bench-results/<name>.txt; they
# assert nothing about speed.

BENCH_CFLAGS := -std=c11 -O2 -g -Wall -Wextra -Wno-unused-parameter -Wno-unused-function -Iinclude -Ibench
BENCH_BINS   := $(BUILD)/bench/pingpong $(BUILD)/bench/throughput

$(BUILD)/bench/%: bench/%.c bench/bench_common.h $(BUILD)/libtachyon.a
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) $< $(BUILD)/libtachyon.a -lpthread -o $@

.PHONY: bench-c bench-c-bin
BENCH_TARGETS += bench-c

bench-c-bin: lib $(BENCH_BINS)

BENCH_OUT := $(BUILD)/bench-results

bench-c: bench-c-bin
	@mkdir -p $(BENCH_OUT)
	@for b in pingpong throughput; do \
		$(BUILD)/bench/$$b > $(BENCH_OUT)/$$b.txt 2>&1; rc=$$?; \
		cat $(BENCH_OUT)/$$b.txt; \
		[ $$rc = 0 ] || { echo "bench-c: $$b failed (exit $$rc)"; exit 1; }; \
	done; echo "bench-c: written to $(BENCH_OUT)/pingpong.txt and throughput.txt"
