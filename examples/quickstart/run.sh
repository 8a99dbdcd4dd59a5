#!/usr/bin/env bash
# examples/quickstart/run.sh - the quick starts of README.md, as a user would
# run them (make test-quickstart):
#   1. README.md shows exactly these files (check_readme.py);
#   2. C: `make install PREFIX=<tmp>`, then each program built with the
#      README's pkg-config line (no LD_LIBRARY_PATH: the rpath must find the
#      installed library, not another libtachyon on the machine);
#   3. Python: the programs as they are, with the project's .venv Python;
#   4. Rust: the cargo project copied to a directory outside the repository,
#      its dependency pointed at bindings/rust/tachyon, built there;
#   5. every consumer (the three plain ones and the event-loop ones: C epoll,
#      Python asyncio, Rust tokio) with every producer (6 x 3 pairs): a few
#      messages, both exit 0, the consumer prints exactly what was sent and
#      then sees the producer's clean close;
#   6. the request/reply quick start (Python server and caller).
# Everything is built and run in one temporary directory, removed at the end.
#
# Environment: PY (the Python with tachyon installed, default .venv/bin/python),
# CC (default cc), CARGO (default cargo).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
QS=$ROOT/examples/quickstart
PY=${PY:-$ROOT/.venv/bin/python}
CC=${CC:-cc}
CARGO=${CARGO:-cargo}
PAIR_TIMEOUT=60

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
    echo "quickstart: $passed passed, $failed failed"
    [[ $failed -eq 0 ]]
    exit
}

work=$(mktemp -d "${TMPDIR:-/tmp}/tachyon-quickstart.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/sock" "$work/log"

# ---- 1. README ------------------------------------------------------------------
if "$PY" "$QS/check_readme.py" "$ROOT/README.md" > "$work/log/readme.txt"; then
    pass "README.md shows examples/quickstart/ byte for byte"
else
    fail "README.md and examples/quickstart/ differ:"
    grep -v '^ok ' "$work/log/readme.txt" | sed 's/^/    /'
fi

# ---- 2. C: install, pkg-config, rpath --------------------------------------------
prefix=$work/prefix
c_ok=1
if ! make -C "$ROOT" -s --no-print-directory install PREFIX="$prefix" > "$work/log/install.txt" 2>&1; then
    fail "make install PREFIX=$prefix:"; sed 's/^/    /' "$work/log/install.txt"; c_ok=0
fi
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
for prog in consumer producer epoll_consumer; do
    (( c_ok )) || break
    src=$QS/c/$prog.c
    # The line README gives, for a library installed under a prefix of one's own.
    if ! "$CC" "$src" -o "$work/bin/c-$prog" $(pkg-config --cflags --libs tachyon) \
            -Wl,-rpath,"$(pkg-config --variable=libdir tachyon)" > "$work/log/c-$prog.txt" 2>&1; then
        fail "C $prog does not build with pkg-config:"; sed 's/^/    /' "$work/log/c-$prog.txt"; c_ok=0; continue
    fi
    if ! "$CC" -std=c11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I"$prefix/include" "$src" \
            > "$work/log/c-$prog-warn.txt" 2>&1; then
        fail "C $prog is not warning-free (-std=c11 -Wall -Wextra -Wpedantic):"
        sed 's/^/    /' "$work/log/c-$prog-warn.txt"; c_ok=0; continue
    fi
    lib=$(ldd "$work/bin/c-$prog" | awk '/libtachyon/ {print $3}')
    if [[ $lib != "$prefix"/lib/* ]]; then
        fail "C $prog loads libtachyon from '$lib', not from $prefix/lib (rpath)"; c_ok=0; continue
    fi
done
(( c_ok )) && pass "C: make install PREFIX=..., built with pkg-config and an rpath, loads $prefix/lib/libtachyon.so"

# ---- 3. Python --------------------------------------------------------------------
py_ok=1
if ! "$PY" -c "import tachyon" > "$work/log/py.txt" 2>&1; then
    fail "Python: $PY cannot import tachyon (make python-install):"; sed 's/^/    /' "$work/log/py.txt"; py_ok=0
fi
(( py_ok )) && pass "Python: $PY imports tachyon"

# ---- 4. Rust, outside the repository ---------------------------------------------
# Each cargo project (the plain one, the tokio one) copied out of the repository,
# its dependency pointed at bindings/rust/tachyon as README tells a user to do.
build_rust_project() { # NAME: examples/quickstart/NAME -> $work/NAME
    local src=$QS/$1 project=$work/$1
    mkdir -p "$project"
    cp -r "$src/Cargo.toml" "$src/src" "$project/"
    [[ -f $src/Cargo.lock ]] && cp "$src/Cargo.lock" "$project/"
    sed -i "s|path = \"../../../bindings/rust/tachyon\"|path = \"$ROOT/bindings/rust/tachyon\"|" "$project/Cargo.toml"
    if ! grep -q "path = \"$ROOT/bindings/rust/tachyon\"" "$project/Cargo.toml"; then
        fail "Rust ($1): Cargo.toml has no dependency line to point at $ROOT/bindings/rust/tachyon"; return 1
    elif ! (cd "$project" && "$CARGO" build --quiet) > "$work/log/cargo-$1.txt" 2>&1; then
        fail "Rust ($1): cargo build in $project failed:"; tail -n 40 "$work/log/cargo-$1.txt" | sed 's/^/    /'
        return 1
    fi
}
rs_ok=0 rs_tokio_ok=0
build_rust_project rust && rs_ok=1 &&
    pass "Rust: the cargo project builds in a directory outside the repository"
build_rust_project rust-tokio && rs_tokio_ok=1 &&
    pass "Rust: the tokio cargo project builds in a directory outside the repository"
project=$work/rust

# ---- 5. every consumer with every producer ----------------------------------------
consumer_cmd() {
    case $1 in
    c) echo "$work/bin/c-consumer" ;;
    c-epoll) echo "$work/bin/c-epoll_consumer" ;;
    python) echo "$PY $QS/python/consumer.py" ;;
    python-asyncio) echo "$PY $QS/python/asyncio_consumer.py" ;;
    rust) echo "$project/target/debug/tachyon-quickstart consumer" ;;
    rust-tokio) echo "$work/rust-tokio/target/debug/tachyon-quickstart-tokio" ;;
    esac
}
producer_cmd() {
    case $1 in
    c) echo "$work/bin/c-producer" ;;
    python) echo "$PY $QS/python/producer.py" ;;
    rust) echo "$project/target/debug/tachyon-quickstart producer" ;;
    esac
}
ready() {
    case $1 in
    c | c-epoll) (( c_ok )) ;;
    python | python-asyncio) (( py_ok )) ;;
    rust) (( rs_ok )) ;;
    rust-tokio) (( rs_tokio_ok )) ;;
    esac
}

expected_consumer=$(for i in 0 1 2 3 4; do echo "type 1: hello $i"; done
                    echo "received 5 messages; the producer closed the bus")
for c in c c-epoll python python-asyncio rust rust-tokio; do
    for p in c python rust; do
        ready "$c" && ready "$p" || continue
        sock=$work/sock/$c-$p.sock
        clog=$work/log/consumer-$c-$p.txt plog=$work/log/producer-$c-$p.txt
        # The consumer first (it creates the socket); the producer retries until it is there.
        timeout "$PAIR_TIMEOUT" $(consumer_cmd "$c") "$sock" > "$clog" 2>&1 &
        cpid=$!
        timeout "$PAIR_TIMEOUT" $(producer_cmd "$p") "$sock" > "$plog" 2>&1
        prc=$?
        wait "$cpid"
        crc=$?
        if (( crc == 0 && prc == 0 )) && [[ $(cat "$clog") == "$expected_consumer" ]] &&
                [[ $(cat "$plog") == "sent 5 messages" ]]; then
            pass "$c consumer <- $p producer: 5 messages, clean close, both exit 0"
        else
            fail "$c consumer <- $p producer (consumer exit $crc, producer exit $prc):"
            sed 's/^/    consumer: /' "$clog"
            sed 's/^/    producer: /' "$plog"
        fi
        if [[ -e $sock ]]; then
            fail "$c consumer <- $p producer: the socket file $sock is still there"
        fi
    done
done
# ---- 6. request/reply in Python -------------------------------------------------
if (( py_ok )); then
    sock=$work/sock/rpc.sock
    slog=$work/log/rpc-server.txt clog=$work/log/rpc-client.txt
    timeout "$PAIR_TIMEOUT" "$PY" "$QS/python/rpc_server.py" "$sock" > "$slog" 2>&1 &
    spid=$!
    timeout "$PAIR_TIMEOUT" "$PY" "$QS/python/rpc_client.py" "$sock" > "$clog" 2>&1
    crc=$?
    wait "$spid"
    src=$?
    expected_client=$(printf 'bid -> BID\nask -> ASK\ntrade -> TRADE')
    if (( crc == 0 && src == 0 )) && [[ $(cat "$clog") == "$expected_client" ]] &&
            [[ $(cat "$slog") == "served until the caller closed" ]]; then
        pass "Python request/reply: 3 calls answered, the server returns when the caller closes"
    else
        fail "Python request/reply (server exit $src, client exit $crc):"
        sed 's/^/    server: /' "$slog"
        sed 's/^/    client: /' "$clog"
    fi
fi
finish
