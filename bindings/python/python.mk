# bindings/python/python.mk - the Python package (tachyon-ipc): tests and benchmarks.
#   make test-python     install the package into the project's .venv and run its pytest suite
#   make bench-python    the Python benchmarks (bench/python), against a C peer;
#                        the report also in build/bench-results/python.txt
#   make python-install  only the install (again whenever a C or Python source changed)

PY_PKG_DIR := bindings/python
PY_PEER := $(BUILD)/python/c_peer
PY_STAMP := $(BUILD)/python/.installed
PY_SOURCES := $(wildcard $(PY_PKG_DIR)/ext/*.c $(PY_PKG_DIR)/ext/*.h $(PY_PKG_DIR)/tachyon/*.py \
                $(PY_PKG_DIR)/tachyon/*.pyi $(PY_PKG_DIR)/setup.py $(PY_PKG_DIR)/pyproject.toml) \
              $(LIB_SRCS) $(LIB_HDRS)

.PHONY: python-install test-python bench-python

$(PY_STAMP): $(PY_SOURCES) | setup
	@mkdir -p $(dir $@)
	PIP_DISABLE_PIP_VERSION_CHECK=1 $(PY) -m pip install -q --force-reinstall --no-deps ./$(PY_PKG_DIR)
	@touch $@

python-install: $(PY_STAMP)

$(PY_PEER): bench/python/c_peer.c include/tachyon.h $(BUILD)/libtachyon.a
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O2 -Wall -Wextra -D_GNU_SOURCE -Iinclude $< $(BUILD)/libtachyon.a -o $@

test-python: python-install
	cd $(PY_PKG_DIR)/tests && timeout 600 $(PY) -m pytest -q -p no:cacheprovider .

bench-python: lib python-install $(PY_PEER)
	timeout 900 $(PY) bench/python/bench.py --peer $(PY_PEER) --out $(BUILD)/bench-results/python.txt

TEST_TARGETS += test-python
BENCH_TARGETS += bench-python
