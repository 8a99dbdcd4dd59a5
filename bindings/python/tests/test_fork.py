"""fork(): a child that inherited a bus cannot use it (the shared memory is
not mapped there). Every method on the buses and on the guards it inherited
raises TachyonStateError with ERR_FORKED instead of touching memory that is
not there; close() drops the handle; the interpreter's exit deallocates
everything without a crash; and the parent's bus goes on working.

It runs in a subprocess (the children exit through a normal interpreter
shutdown, which must not happen inside pytest), 100 children in all."""
import subprocess
import sys

FORK_CHILDREN = r"""
import os, sys, threading, tachyon

path, children = sys.argv[1], int(sys.argv[2])

def open_pair():
    got = {}
    t = threading.Thread(target=lambda: got.update(bus=tachyon.Bus.listen(path, 1 << 14)))
    t.start()
    peer = tachyon.Bus.connect(path, timeout=10)
    t.join()
    return got["bus"], peer

rx_bus, tx_bus = open_pair()
for i in range(4):
    tx_bus.send(bytes([i]) * 8, i)
rx = rx_bus.recv_zero_copy(timeout=5)           # a message held across the fork
mv = memoryview(rx)                              # a view of it, alive in the child
capsule = rx.__dlpack__(max_version=(1, 0))      # an unconsumed tensor, alive too
view = rx.view("B")
tx = tx_bus.send_zero_copy(8, 9)                 # an open slot

CALLS = {
    "send": lambda: tx_bus.send(b"x", 1),
    "send_zero_copy": lambda: tx_bus.send_zero_copy(8, 1),
    "send_packed": lambda: tx_bus.send_packed("<Q", 1, 5),
    "send_batch": lambda: tx_bus.send_batch(b"12345678", 8),
    "flush": lambda: tx_bus.flush(),
    "_bus.flush": lambda: tx_bus._bus.flush(),
    "_bus.acquire_tx": lambda: tx_bus._bus.acquire_tx(8),
    "recv": lambda: rx_bus.recv(timeout=0),
    "recv blocking": lambda: rx_bus.recv(),
    "recv_zero_copy": lambda: rx_bus.recv_zero_copy(),
    "drain_batch": lambda: rx_bus.drain_batch(),
    "_bus.acquire_rx": lambda: rx_bus._bus.acquire_rx(),
    "_bus.drain_batch": lambda: rx_bus._bus.drain_batch(4, 0),
    "iter": lambda: iter(rx_bus),
    "next": lambda: next(rx_bus),
    "peer_alive rx": lambda: rx_bus.peer_alive(),
    "peer_alive tx": lambda: tx_bus.peer_alive(),
    "state": lambda: rx_bus.state,
    "capacity": lambda: tx_bus.capacity,
    "set_polling_mode": lambda: rx_bus.set_polling_mode(1),
    "set_numa_node": lambda: tx_bus.set_numa_node(0),
    "rx.data": lambda: rx.data,
    "memoryview(rx)": lambda: memoryview(rx),
    "rx.__dlpack__": lambda: rx.__dlpack__(),
    "rx.view": lambda: rx.view("B"),
    "memoryview(view)": lambda: memoryview(view),
    "view.__dlpack__": lambda: view.__dlpack__(),
    "memoryview(tx)": lambda: memoryview(tx),
}

def check_every_method():
    wrong = []
    for name, call in CALLS.items():
        try:
            call()
            wrong.append("%s: returned" % name)
        except tachyon.TachyonStateError as e:
            if e.code_name != "ERR_FORKED" or "fork" not in str(e) or not isinstance(e, RuntimeError):
                wrong.append("%s: %r" % (name, e))
        except BaseException as e:
            wrong.append("%s: %r" % (name, e))
    return wrong

def child(mode):
    wrong = check_every_method()
    if wrong:
        print("child %d:" % os.getpid(), "; ".join(wrong), flush=True)
        os._exit(1)
    if mode == 0:       # the guards' with-blocks end in the child
        for guard in (tx, rx):
            try:
                guard.__exit__(None, None, None)
                print("exit returned", flush=True)
                os._exit(1)
            except tachyon.TachyonStateError as e:
                assert e.code_name == "ERR_FORKED"
    if mode in (0, 1):  # the child closes what it inherited
        tx_bus.close()
        rx_bus._bus.destroy()
        assert tx_bus.closed and rx_bus.closed
    sys.exit(0)         # interpreter exit: the rest is deallocated

for i in range(children):
    pid = os.fork()
    if pid == 0:
        child(i % 3)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        print("child", i, "mode", i % 3, "status", status, flush=True)
        sys.exit(1)

# The parent's buses, guards and views are untouched by all of it.
assert bytes(mv) == b"\0" * 8 and rx.data == b"\0" * 8
assert rx_bus.peer_alive() and tx_bus.peer_alive()
memoryview(tx)[:] = b"parent!!"
tx.__exit__(None, None, None)
del mv, capsule, view
rx.release()
got = [rx_bus.recv(timeout=5) for _ in range(4)]
assert [m.data for m in got] == [bytes([i]) * 8 for i in range(1, 4)] + [b"parent!!"], got
print("ok", flush=True)
"""


def test_a_forked_child_gets_err_forked_and_never_crashes(sock_path):
    proc = subprocess.run(
        [sys.executable, "-c", FORK_CHILDREN, sock_path, "100"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, "exit %d (negative: a signal)\n%s%s" % (
        proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    assert proc.stdout.strip() == "ok", proc.stdout + proc.stderr
