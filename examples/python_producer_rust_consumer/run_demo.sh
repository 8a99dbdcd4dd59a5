#!/usr/bin/env bash
# The seed job end to end (make demo runs this after make has set the machine
# up and installed the Python package into .venv): the Rust consumer first (it
# owns the socket), then the Python producer; both sides' figures are printed.
#
# Environment: TICKS (default 500000), TACHYON_SOCKET (default a private path
# in a temporary directory), PYTHON (default the project's .venv/bin/python),
# PIN=0 to let the scheduler place the two processes instead of pinning them
# to different cores.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
EXAMPLE="$ROOT/examples/python_producer_rust_consumer"
CONSUMER="$EXAMPLE/consumer/target/release/tick-consumer"
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
TICKS=${TICKS:-500000}
WORKDIR=$(mktemp -d)
SOCKET=${TACHYON_SOCKET:-$WORKDIR/ticks.sock}
PIN=${PIN:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}

say() { printf '\n== %s\n' "$*"; }

need() {
    command -v "$1" >/dev/null 2>&1 || { echo "make demo: '$1' is required but not installed ($2)" >&2; exit 1; }
}
[[ -x $PYTHON ]] || { echo "make demo: $PYTHON not found: run 'make demo' (it creates the project's .venv)" >&2; exit 1; }
"$PYTHON" -c "import tachyon" 2>/dev/null ||
    { echo "make demo: the tachyon package is not installed in $PYTHON: run 'make demo'" >&2; exit 1; }
need cargo "the Rust toolchain, from rustup"
need cc "a C compiler, e.g. apt-get install -y build-essential"

say "Building the C library"
make -C "$ROOT" --no-print-directory -s lib

say "Building the Rust consumer (cargo build --release)"
cargo build --release --quiet --manifest-path "$EXAMPLE/consumer/Cargo.toml"

# One core each: the consumer spins on the ring while the producer writes.
# On a machine with one core, or with PIN=0, let the scheduler decide.
consumer_cpu=() producer_cpu=()
if [[ $PIN == 1 ]] && command -v taskset >/dev/null && (( $(nproc) >= 2 )); then
    consumer_cpu=(taskset -c 1) producer_cpu=(taskset -c 0)
fi

consumer_log=$WORKDIR/consumer.log
producer_log=$WORKDIR/producer.log
consumer_pid=
cleanup() {
    [[ -n $consumer_pid ]] && kill "$consumer_pid" 2>/dev/null || true
    rm -rf "$WORKDIR"
}
trap cleanup EXIT

say "Running: consumer first, then producer ($TICKS ticks, socket $SOCKET)"
TACHYON_SOCKET=$SOCKET TICKS=$TICKS \
    timeout "$RUN_TIMEOUT" "${consumer_cpu[@]}" "$CONSUMER" >"$consumer_log" 2>&1 &
consumer_pid=$!

producer_status=0
TACHYON_SOCKET=$SOCKET TICKS=$TICKS \
    timeout "$RUN_TIMEOUT" "${producer_cpu[@]}" "$PYTHON" "$EXAMPLE/producer.py" 2>&1 \
    | tee "$producer_log" || producer_status=$?

consumer_status=0
wait "$consumer_pid" || consumer_status=$?
consumer_pid=
echo
cat "$consumer_log"

say "Figures of this run (timing depends on what else the machine runs)"
"$PYTHON" "$EXAMPLE/summarize.py" "$producer_log" "$consumer_log" "$TICKS" || true

if (( producer_status != 0 || consumer_status != 0 )); then
    echo
    echo "make demo: FAILED (producer exit $producer_status, consumer exit $consumer_status)" >&2
    exit 1
fi
echo
echo "make demo: OK"
