# Comparison benchmark suite (bench/compare/): the seed workload, Python
# producer -> native consumer, over tachyon and over the transports a user
# would otherwise pick; the lead's C benchmarks and a Python receive benchmark
# beside it. bench/compare/run.py drives everything and writes bench/results/.
#
#   make bench-compare       full run (3 runs per variant), writes bench/results/
#   make test-bench-smoke    tiny counts, one run, output to a temporary folder
#
# run.py installs what it needs (numpy, matplotlib, pyzmq from PyPI, libzmq3-dev
# from apt, the tachyon Python package from bindings/python) and then builds the
# two programs below through this file, so a libzmq that was installed later
# still gets linked in.

CMP_PYTHON ?= $(PY)
CMP_BUILD  := $(BUILD)/bench/compare
CMP_CFLAGS := -std=c11 -O2 -g -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
              -Wno-unused-parameter -Iinclude

# The ZeroMQ transport is compiled in only when libzmq's header is there.
$(CMP_BUILD)/consumer: bench/compare/consumer.c $(BUILD)/libtachyon.a
	@mkdir -p $(dir $@)
	@if [ -f /usr/include/zmq.h ]; then zmq="-DHAVE_ZMQ"; zlib="-lzmq"; \
	else echo "compare.mk: no zmq.h, building the consumer without ZeroMQ"; fi; \
	echo "$(CC) $(CMP_CFLAGS) $$zmq $< $(BUILD)/libtachyon.a $$zlib -o $@"; \
	$(CC) $(CMP_CFLAGS) $$zmq $< $(BUILD)/libtachyon.a $$zlib -o $@

$(CMP_BUILD)/c_producer: bench/compare/c_producer.c $(BUILD)/libtachyon.a
	@mkdir -p $(dir $@)
	$(CC) $(CMP_CFLAGS) $< $(BUILD)/libtachyon.a -o $@

.PHONY: bench-compare-bin bench-compare test-bench-smoke
bench-compare-bin: lib $(CMP_BUILD)/consumer $(CMP_BUILD)/c_producer

bench-compare: lib python-install
	$(CMP_PYTHON) bench/compare/run.py

test-bench-smoke: lib python-install
	timeout 900 $(CMP_PYTHON) bench/compare/run.py --smoke

TEST_TARGETS  += test-bench-smoke
BENCH_TARGETS += bench-compare
