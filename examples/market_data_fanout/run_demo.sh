#!/usr/bin/env bash
# The fan-out example (make demo-fanout runs this after make has set the
# machine up and installed the Python package into .venv): the Python feed
# handler publishes ticks to three readers at once, each reading the same
# shared ring in place: a Rust strategy, a Python recorder writing a file, a
# Python monitor printing rates and latency.
#
# Environment: DURATION (seconds, default 10), RATE (ticks/s, default 20000),
# POLICY (drop or block, default drop), PYTHON (default .venv/bin/python).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
EXAMPLE="$ROOT/examples/market_data_fanout"
STRATEGY="$EXAMPLE/strategy/target/release/fanout-strategy"
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
DURATION=${DURATION:-10}
RATE=${RATE:-20000}
POLICY=${POLICY:-drop}
WORKDIR=$(mktemp -d)
SOCKET=$WORKDIR/md.sock

[[ -x $PYTHON ]] || { echo "demo-fanout: $PYTHON not found: run 'make demo-fanout'" >&2; exit 1; }
command -v cargo >/dev/null || { echo "demo-fanout: cargo is required (the Rust toolchain, from rustup)" >&2; exit 1; }
cargo build --release --quiet --manifest-path "$EXAMPLE/strategy/Cargo.toml"

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORKDIR"
}
trap cleanup EXIT

cd "$EXAMPLE"
"$PYTHON" feed.py --socket "$SOCKET" --rate "$RATE" --duration "$DURATION" --policy "$POLICY" &
feed=$!
pids+=("$feed")
"$STRATEGY" "$SOCKET" &
pids+=($!)
"$PYTHON" recorder.py --socket "$SOCKET" --out "$WORKDIR/ticks.bin" &
pids+=($!)
"$PYTHON" monitor.py --socket "$SOCKET" &
pids+=($!)
wait "$feed"
sleep 1 # the readers drain the ring and see the feed close
echo "demo-fanout: recorded $(( $(stat -c %s "$WORKDIR/ticks.bin") / 32 )) ticks to $WORKDIR/ticks.bin"
