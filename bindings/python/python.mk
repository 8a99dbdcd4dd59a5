# bindings/python/python.mk - the Python package (tachyon-ipc): tests and benchmarks.
#   make test-python     install the package into $(PYTHON) and run its pytest suite
#   make bench-python    the Python benchmarks (bench/python), against a C peer
#   make python-install  only the install
# PYTHON selects the interpreter (default python3).

PYTHON ?= python3
PY_PKG_DIR := bindings/python
PY_PIP := sh $(PY_PKG_DIR)/pip_install.sh $(PYTHON)
PY_PEER := $(BUILD)/python/c_peer

.PHONY: python-install test-python bench-python

python-install:
	$(PY_PIP) --force-reinstall --no-deps ./$(PY_PKG_DIR)

$(PY_PEER): bench/python/c_peer.c include/tachyon.h $(BUILD)/libtachyon.a
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O2 -Wall -Wextra -D_GNU_SOURCE -Iinclude $< $(BUILD)/libtachyon.a -o $@

test-python: python-install
	@$(PYTHON) -c "import pytest" 2>/dev/null || $(PY_PIP) pytest
	cd $(PY_PKG_DIR)/tests && timeout 600 $(PYTHON) -m pytest -q -p no:cacheprovider .

bench-python: lib python-install $(PY_PEER)
	timeout 900 $(PYTHON) bench/python/bench.py --peer $(PY_PEER)

TEST_TARGETS += test-python
BENCH_TARGETS += bench-python
