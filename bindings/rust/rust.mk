# Rust crates: bindings/rust/tachyon-sys (raw FFI) and bindings/rust/tachyon (safe API).
# Included by the top Makefile. The crates compile the C core themselves (cc crate),
# so they need no `lib`. The first build downloads cc and pkg-config from crates.io.

RUST_DIR   := bindings/rust
CARGO      ?= cargo

.PHONY: test-rust rust-build rust-doc

TEST_TARGETS += test-rust

rust-build:
	cd $(RUST_DIR) && $(CARGO) build --quiet --release

# Both crates: unit tests, the layout test against tachyon.h, the two-thread
# and two-process tests, the doc examples, and with every feature on (tokio:
# AsyncBus and its tests).
test-rust:
	@command -v $(CARGO) >/dev/null || { echo "test-rust: cargo not found (install Rust with rustup)"; exit 1; }
	cd $(RUST_DIR) && timeout 900 $(CARGO) test --quiet --workspace --all-features

rust-doc:
	cd $(RUST_DIR) && $(CARGO) doc --no-deps --quiet
