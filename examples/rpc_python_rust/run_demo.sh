#!/usr/bin/env bash
# The request/reply example end to end (make demo-rpc runs this after make has
# set the machine up and installed the Python package into .venv): the Rust
# pricing service first (it owns the socket), then the Python client; both
# sides' figures are printed.
#
# Environment: QUOTES (default 200000), DEPTH (pipelined calls in flight,
# default 32), TACHYON_SOCKET (default a private path in a temporary
# directory), PYTHON (default the project's .venv/bin/python), PIN=0 to let
# the scheduler place the two processes, PURE_SPIN=1 for waits that never
# sleep on either side.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
EXAMPLE="$ROOT/examples/rpc_python_rust"
SERVICE="$EXAMPLE/service/target/release/pricing-service"
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
WORKDIR=$(mktemp -d)
SOCKET=${TACHYON_SOCKET:-$WORKDIR/pricing.sock}
PIN=${PIN:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}

say() { printf '\n== %s\n' "$*"; }

[[ -x $PYTHON ]] || { echo "demo-rpc: $PYTHON not found: run 'make demo-rpc' (it creates the project's .venv)" >&2; exit 1; }
"$PYTHON" -c "import tachyon; tachyon.RpcBus" 2>/dev/null ||
    { echo "demo-rpc: the tachyon package is not installed in $PYTHON: run 'make demo-rpc'" >&2; exit 1; }
command -v cargo >/dev/null || { echo "demo-rpc: cargo is required (the Rust toolchain, from rustup)" >&2; exit 1; }

say "Building the Rust pricing service (cargo build --release)"
cargo build --release --quiet --manifest-path "$EXAMPLE/service/Cargo.toml"

service_cpu=() client_cpu=()
if [[ $PIN == 1 ]] && command -v taskset >/dev/null && (( $(nproc) >= 2 )); then
    service_cpu=(taskset -c 1) client_cpu=(taskset -c 0)
fi

service_log=$WORKDIR/service.log
service_pid=
cleanup() {
    [[ -n $service_pid ]] && kill "$service_pid" 2>/dev/null || true
    rm -rf "$WORKDIR"
}
trap cleanup EXIT

say "Running: the service first, then the client (socket $SOCKET)"
TACHYON_SOCKET=$SOCKET timeout "$RUN_TIMEOUT" "${service_cpu[@]}" "$SERVICE" >"$service_log" 2>&1 &
service_pid=$!

client_status=0
TACHYON_SOCKET=$SOCKET timeout "$RUN_TIMEOUT" "${client_cpu[@]}" "$PYTHON" "$EXAMPLE/client.py" || client_status=$?

service_status=0
wait "$service_pid" || service_status=$?
service_pid=
cat "$service_log"

if (( client_status != 0 || service_status != 0 )); then
    echo
    echo "demo-rpc: FAILED (client exit $client_status, service exit $service_status)" >&2
    exit 1
fi
echo
echo "demo-rpc: OK"
