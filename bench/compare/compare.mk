# Comparison benchmark suite (bench/compare/): the seed workload, Python
# producer -> native consumer, over tachyon and over the transports a user
# would otherwise pick; the native C benchmarks and a Python receive benchmark
# beside it. bench/compare/run.py drives everything and writes under build/.
#
#   make bench-compare       full run (3 runs per variant), writes build/bench-results/compare/
#   make bench-publish       copies that run (when whole) into bench/results/, to commit
#   make test-bench-smoke    tiny counts, one run, writes build/bench-results/smoke/;
#                            and the tests of publish.py
#
# make setup installs what run.py uses (numpy, matplotlib, pyzmq into .venv,
# libzmq3-dev with apt); run.py builds the two programs below through this
# file, so a libzmq installed after a first build still gets linked in.

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

.PHONY: bench-compare-bin bench-compare bench-publish test-bench-smoke
bench-compare-bin: lib $(CMP_BUILD)/consumer $(CMP_BUILD)/c_producer

bench-compare: lib python-install
	$(CMP_PYTHON) bench/compare/run.py

bench-publish: | setup
	@$(CMP_PYTHON) bench/compare/publish.py

test-bench-smoke: lib python-install
	timeout 900 $(CMP_PYTHON) bench/compare/run.py --smoke
	cd bench/compare && timeout 300 $(CMP_PYTHON) -m pytest -q -p no:cacheprovider test_publish.py

TEST_TARGETS  += test-bench-smoke
BENCH_TARGETS += bench-compare
