# examples/quickstart/quickstart.mk - the quick starts of README.md.
#   make test-quickstart   README shows these files byte for byte; the C ones
#                          built against `make install PREFIX=<tmp>` with
#                          pkg-config, the Python ones in .venv, the Rust one
#                          as a cargo project outside the repository; every
#                          consumer run with every producer (run.sh)

CARGO ?= cargo

.PHONY: test-quickstart
TEST_TARGETS += test-quickstart

test-quickstart: lib python-install
	@PY=$(PY) CC=$(CC) CARGO=$(CARGO) timeout 900 bash examples/quickstart/run.sh
