# The seed example: Python producer -> Rust consumer (examples/python_producer_rust_consumer).
# `make demo` (top Makefile) runs its run_demo.sh; `make test-e2e` runs the
# end-to-end test with 20,000 ticks and the bad-stream checks.

EXAMPLE_DIR     := examples/python_producer_rust_consumer
CARGO           ?= cargo

.PHONY: test-e2e example-consumer

TEST_TARGETS += test-e2e

example-consumer:
	cd $(EXAMPLE_DIR)/consumer && $(CARGO) build --release --quiet

test-e2e: example-consumer python-install
	cd $(EXAMPLE_DIR)/consumer && timeout 600 $(CARGO) test --release --quiet
	cd $(EXAMPLE_DIR) && E2E_TICKS=20000 timeout 600 $(PY) -m pytest -q -p no:cacheprovider test_e2e.py

# The request/reply example: a Rust pricing service answering a Python client
# (examples/rpc_python_rust). `make demo-rpc` runs it with its figures;
# `make test-rpc-example` checks it end to end, both sides killed included.
RPC_EXAMPLE_DIR := examples/rpc_python_rust

.PHONY: test-rpc-example rpc-example-service demo-rpc

TEST_TARGETS += test-rpc-example

rpc-example-service:
	cd $(RPC_EXAMPLE_DIR)/service && $(CARGO) build --release --quiet

test-rpc-example: rpc-example-service python-install
	cd $(RPC_EXAMPLE_DIR)/service && timeout 600 $(CARGO) test --release --quiet
	cd $(RPC_EXAMPLE_DIR) && timeout 600 $(PY) -m pytest -q -p no:cacheprovider test_example.py

demo-rpc: python-install | setup
	@PYTHON=$(PY) bash $(RPC_EXAMPLE_DIR)/run_demo.sh

# The asyncio example: one event loop consuming two buses and a timer
# (examples/asyncio_consumer). `make demo-asyncio` runs it (DURATION seconds,
# 10 by default); `make test-asyncio-example` runs it briefly on asyncio and uvloop.
ASYNCIO_EXAMPLE_DIR := examples/asyncio_consumer
DURATION ?= 10

.PHONY: demo-asyncio test-asyncio-example

TEST_TARGETS += test-asyncio-example

demo-asyncio: python-install | setup
	$(PY) $(ASYNCIO_EXAMPLE_DIR)/consumer.py --duration $(DURATION)

test-asyncio-example: python-install
	cd $(ASYNCIO_EXAMPLE_DIR) && timeout 300 $(PY) -m pytest -q -p no:cacheprovider test_example.py

# The fan-out example: a Python feed handler publishing ticks to a Rust
# strategy, a Python recorder and a Python monitor at once, over one shared
# ring (examples/market_data_fanout). `make demo-fanout` runs it (DURATION
# seconds, 10 by default); `make test-fanout-example` kills one reader and
# checks that the others keep receiving.
FANOUT_EXAMPLE_DIR := examples/market_data_fanout

.PHONY: demo-fanout test-fanout-example fanout-example-strategy

TEST_TARGETS += test-fanout-example

fanout-example-strategy:
	cd $(FANOUT_EXAMPLE_DIR)/strategy && $(CARGO) build --release --quiet

demo-fanout: python-install fanout-example-strategy | setup
	@PYTHON=$(PY) DURATION=$(DURATION) bash $(FANOUT_EXAMPLE_DIR)/run_demo.sh

test-fanout-example: python-install fanout-example-strategy
	cd $(FANOUT_EXAMPLE_DIR) && timeout 300 $(PY) -m pytest -q -p no:cacheprovider test_example.py
