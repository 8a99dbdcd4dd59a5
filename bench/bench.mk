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

# Request/reply: C<->C round trips beside the floors (bench/rpc.c), then
# Python<->Python beside ZeroMQ REQ/REP and a Unix socket
# (bench/python/rpc_bench.py); figures also written under build/bench-results/.
.PHONY: bench-rpc
BENCH_TARGETS += bench-rpc

bench-rpc: lib $(BUILD)/bench/rpc python-install
	@mkdir -p $(BENCH_OUT)
	$(BUILD)/bench/rpc | tee $(BENCH_OUT)/rpc_c.txt
	timeout 900 $(PY) bench/python/rpc_bench.py --out $(BENCH_OUT)/rpc_python.json | tee $(BENCH_OUT)/rpc_python.txt

# Event loops: asyncio (and uvloop) consumers of a bus against the blocking
# consumer and an asyncio consumer of a Unix socket, in one run: one-way
# latency at a fixed rate, throughput, idle CPU (bench/asyncio/bench.py).
# Figures under build/bench/asyncio/.
.PHONY: bench-asyncio
BENCH_TARGETS += bench-asyncio

bench-asyncio: lib python-install $(BUILD)/python/c_peer
	timeout 1800 $(PY) bench/asyncio/bench.py --peer $(abspath $(BUILD)/python/c_peer) --out $(BENCH_OUT)/asyncio

# Fan-out and fan-in (bench/fan/fan.c): fan-out to 1, 2 and 4 blocking
# readers against N separate buses fed by the same producer and against
# ZeroMQ PUB/SUB over ipc:// (when libzmq's header is there), per-reader
# latency at a fixed rate against one bus, fan-in from 2 and 4 producers
# against one bus. Figures also in build/bench-results/fan.txt.
.PHONY: bench-fan
BENCH_TARGETS += bench-fan

$(BUILD)/bench/fan: bench/fan/fan.c bench/bench_common.h $(BUILD)/libtachyon.a
	@mkdir -p $(dir $@)
	@if [ -f /usr/include/zmq.h ]; then zmq="-DHAVE_ZMQ"; zlib="-lzmq"; \
	else echo "bench.mk: no zmq.h, building bench/fan without ZeroMQ"; fi; \
	echo "$(CC) $(BENCH_CFLAGS) $$zmq $< $(BUILD)/libtachyon.a $$zlib -lpthread -o $@"; \
	$(CC) $(BENCH_CFLAGS) $$zmq $< $(BUILD)/libtachyon.a $$zlib -lpthread -o $@

bench-fan: lib $(BUILD)/bench/fan
	@mkdir -p $(BENCH_OUT)
	timeout 1800 $(BUILD)/bench/fan | tee $(BENCH_OUT)/fan.txt
