# The seed example: Python producer -> Rust consumer (examples/python_producer_rust_consumer).
# `make demo` (top Makefile) runs its run_demo.sh; `make test-e2e` runs the
# end-to-end test with 20,000 ticks and the bad-stream checks.

EXAMPLE_DIR     := examples/python_producer_rust_consumer
EXAMPLE_PYTHON  ?= python3
EXAMPLE_PIP     := PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore $(EXAMPLE_PYTHON) -m pip install --quiet
CARGO           ?= cargo

.PHONY: test-e2e example-consumer example-python-deps

TEST_TARGETS += test-e2e

example-consumer:
	cd $(EXAMPLE_DIR)/consumer && $(CARGO) build --release --quiet

example-python-deps:
	$(EXAMPLE_PIP) ./bindings/python
	@$(EXAMPLE_PYTHON) -c "import pytest" 2>/dev/null || $(EXAMPLE_PIP) pytest

test-e2e: example-consumer example-python-deps
	cd $(EXAMPLE_DIR)/consumer && timeout 600 $(CARGO) test --release --quiet
	cd $(EXAMPLE_DIR) && E2E_TICKS=20000 timeout 600 $(EXAMPLE_PYTHON) -m pytest -q -p no:cacheprovider test_e2e.py
