"""tachyon-top end to end: real buses between helper processes, read by the
tool from the outside.

Other programs of the same user may have buses open while this runs; every
check looks only at the buses and processes the test made.
"""

import os
import pwd
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import BUS_PEER, HOSTILE, TOP, WAIT_S, bus_at, run_top, top_json

CAPACITY = 1 << 20


def wait_until(check, what, timeout=WAIT_S, interval=0.1):
    """Poll check() until it returns something true; fail with `what` if it never does."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"{what} (not within {timeout} s)")


# ---- live buses ------------------------------------------------------------


def test_two_live_buses_with_their_pids_and_exact_counts(helpers):
    # A: everything sent was received. B: the reader stopped at 100 of 300.
    a, a_prod, a_cons = helpers.bus("a", ["--count", "5000", "--size", "100"], ["--count", "5000"])
    b, b_prod, b_cons = helpers.bus("b", ["--count", "300", "--size", "100"], ["--count", "100"])

    doc = top_json()
    assert doc["schema"] == 1
    assert doc["uid"] == os.getuid()
    assert doc["interval_s"] is not None and doc["interval_s"] > 0

    bus = bus_at(doc, a)
    assert bus is not None, f"{a} not listed: {doc}"
    assert bus["status"] == "alive" and bus["alive"] is True and bus["state"] == "READY"
    assert bus["memfd"] == "tachyon:" + a
    assert bus["capacity"] == CAPACITY
    assert bus["producer"]["pid"] == a_prod.pid and bus["consumer"]["pid"] == a_cons.pid
    assert bus["producer"]["name"] == "bus_peer" and bus["consumer"]["name"] == "bus_peer"
    assert bus["producer"]["process"] == "attached" and bus["consumer"]["process"] == "attached"
    assert (bus["producer"]["messages"], bus["producer"]["bytes"]) == (5000, 500000)
    assert (bus["consumer"]["messages"], bus["consumer"]["bytes"]) == (5000, 500000)
    assert (bus["messages"], bus["bytes"], bus["lag_messages"]) == (5000, 500000, 0)
    assert bus["producer"]["ring_full"] == 0
    assert {h["pid"] for h in bus["holders"]} == {a_prod.pid, a_cons.pid}
    assert 0 <= bus["fill_bytes"] <= CAPACITY
    # Nothing moved between the two samples: the rate is exactly zero.
    assert bus["msgs_per_s"] == 0 and bus["bytes_per_s"] == 0

    bus = bus_at(doc, b)
    assert bus is not None, f"{b} not listed: {doc}"
    assert bus["status"] == "alive"
    assert bus["producer"]["pid"] == b_prod.pid and bus["consumer"]["pid"] == b_cons.pid
    assert (bus["producer"]["messages"], bus["consumer"]["messages"]) == (300, 100)
    assert (bus["producer"]["bytes"], bus["consumer"]["bytes"]) == (30000, 10000)
    assert bus["lag_messages"] == 200
    # 200 unread messages of 100 bytes take at least 200 slots of 192 bytes,
    # as far as the stored head and tail tell (head may be stored late).
    assert 0 < bus["fill_bytes"] <= CAPACITY
    assert bus["fill_pct"] == pytest.approx(100 * bus["fill_bytes"] / CAPACITY, abs=0.001)

    # The table says the same for people.
    r = run_top("--once", "--interval", "0")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()[2:] if line.startswith("/")}
    assert a in rows and b in rows, r.stdout
    assert rows[a][1] == "alive" and rows[a][2] == str(a_prod.pid) and rows[a][4] == str(a_cons.pid)
    assert rows[b][-3] == "200" and rows[b][-1] == "300"  # LAG, MSGS


def test_watch_one_bus(helpers):
    a, a_prod, a_cons = helpers.bus("w", ["--count", "2000", "--size", "8"], ["--count", "2000"])
    doc = top_json("--watch", a)
    assert [bus["path"] for bus in doc["buses"]] == [a]
    assert doc["buses"][0]["producer"]["messages"] == 2000

    r = run_top("--once", "--interval", "0", "--watch", a)
    assert r.returncode == 0, r.stderr
    assert re.search(rf"^producer +{a_prod.pid} bus_peer, attached: sent 2000 msgs, 16000 B", r.stdout, re.M), r.stdout
    assert re.search(rf"^consumer +{a_cons.pid} bus_peer, attached: received 2000 msgs", r.stdout, re.M), r.stdout

    r = run_top("--once", "--interval", "0", "--watch", a + ".missing")
    assert r.returncode == 1 and "no bus at" in r.stderr


def test_rates_of_a_running_stream(helpers):
    path, _, _ = helpers.bus("r", ["--count", "100", "--size", "64", "--rate", "2000", "--forever"],
                             ["--count", "100", "--forever"])

    def moving():
        bus = bus_at(top_json(interval="1"), path)
        return bus if bus and bus["msgs_per_s"] else None

    bus = wait_until(moving, f"{path}: no messages per second seen")
    assert bus["status"] == "alive"
    # Every message carries 64 bytes: the two rates agree exactly.
    assert bus["bytes_per_s"] == pytest.approx(64 * bus["msgs_per_s"], rel=1e-3)


# ---- buses whose peer is gone ------------------------------------------------


def test_a_killed_peer_shows_as_gone(helpers):
    p, p_prod, p_cons = helpers.bus("p-killed", ["--count", "2000"], ["--count", "2000"])
    c, c_prod, c_cons = helpers.bus("c-killed", ["--count", "2000"], ["--count", "2000"])
    closed, cl_prod, cl_cons = helpers.bus("closed", ["--count", "2000"], ["--count", "2000"])
    alive, _, _ = helpers.bus("still-alive", ["--count", "10"], ["--count", "10"])

    p_prod.kill()                 # SIGKILL, reaped
    c_cons.kill(reap=False)       # SIGKILL, left a zombie until the test ends
    cl_prod.kill(signal.SIGTERM)  # a clean close

    doc = wait_until(lambda: (lambda d: d if bus_at(d, p) and bus_at(d, p)["status"] == "gone" else None)(
        top_json(interval="0")), f"{p} never shown as gone")

    bus = bus_at(doc, p)
    assert bus["alive"] is False and bus["state"] == "READY"
    assert bus["producer"]["pid"] == p_prod.pid and bus["producer"]["process"] == "ended"
    assert bus["consumer"]["pid"] == p_cons.pid and bus["consumer"]["process"] == "attached"
    assert f"pid {p_prod.pid}" in bus["detail"] and "ended without closing" in bus["detail"]

    bus = bus_at(doc, c)
    assert bus["status"] == "gone"
    assert bus["consumer"]["pid"] == c_cons.pid and bus["consumer"]["process"] == "ended"
    assert bus["producer"]["process"] == "attached"

    bus = bus_at(doc, closed)
    assert bus["status"] == "gone" and bus["state"] == "DISCONNECTED"
    assert bus["producer"]["process"] == "ended"

    assert bus_at(doc, alive)["status"] == "alive"

    r = run_top("--once", "--interval", "0")
    gone_rows = [line for line in r.stdout.splitlines() if line.startswith(p + " ")]
    assert gone_rows and gone_rows[0].split()[1] == "gone", r.stdout


# ---- hostile segments ----------------------------------------------------------


def test_hostile_segments_are_skipped_with_a_note(helpers):
    hostile = helpers.start("hostile", [HOSTILE])
    hostile.wait_ready()

    doc = top_json()
    skipped = {s["memfd"]: s for s in doc["skipped"] if s["pid"] == hostile.pid}
    expect = {
        "tachyon:/hostile/bad-header": "not a Tachyon segment",
        "tachyon:/hostile/big-capacity": "capacity",
        "tachyon:/hostile/unsealed": "not sealed",
        "tachyon:/hostile/tail-past-head": "tail 5000 is 4900 bytes past head 100",
        "tachyon:/hostile/absurd-counts": "producer counted 9223372036854775808 messages",
    }
    assert set(skipped) == set(expect), doc["skipped"]
    for name, words in expect.items():
        assert words in skipped[name]["reason"], skipped[name]
        assert skipped[name]["fd"] >= 0

    ours = {b["path"]: b for b in doc["buses"] if any(h["pid"] == hostile.pid for h in b["holders"])}
    torn, published = '/hostile/torn\x1b[2J"\ufffd', "/hostile/published-style"
    # A torn counter block is not an error: the bus is listed, its counters unknown.
    assert sorted(ours) == sorted([torn, published]), list(ours)
    for bus in ours.values():
        assert bus["producer"]["reported"] is False and bus["consumer"]["reported"] is False
        assert bus["messages"] is None
    assert ours[torn]["status"] == "gone"
    # A peer that keeps only the mapping still counts as attached.
    mapper = int(hostile.out_path.read_text().split()[3])
    holders = {h["pid"]: h for h in ours[published]["holders"]}
    assert set(holders) == {hostile.pid, mapper}, holders
    assert holders[mapper]["mapped_only"] is True and holders[mapper]["fds"] == []
    assert holders[hostile.pid]["mapped_only"] is False
    assert ours[published]["status"] == "alive" and ours[published]["memfd"] == published
    assert not any("not-a-bus" in b["memfd"] for b in doc["buses"])
    assert not any("not-a-bus" in s["memfd"] for s in doc["skipped"])

    # The text table shows notes, and never a raw control byte.
    r = run_top("--once", "--interval", "0")
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout
    notes = [line for line in r.stdout.splitlines() if line.startswith(f"skipped: pid {hostile.pid} ")]
    assert len(notes) == 5, r.stdout


# ---- the curses screen -----------------------------------------------------------


class Tmux:
    """A private tmux server (its own socket in the test's directory)."""

    def __init__(self, workdir):
        self.tmux = shutil.which("tmux")
        if not self.tmux:
            pytest.fail("tmux not found: run make setup (scripts/apt-packages.txt lists it)")
        self.sock = str(workdir / "tmux.sock")

    def run(self, *args, check=True):
        # LINES and COLUMNS (pytest sets them) would override the pane's size in curses.
        env = {k: v for k, v in os.environ.items() if k not in ("LINES", "COLUMNS")}
        return subprocess.run([self.tmux, "-S", self.sock, *args], capture_output=True, text=True,
                              timeout=30, check=check, stdin=subprocess.DEVNULL, env=env)

    def start(self, command):
        self.run("new-session", "-d", "-s", "top", "-x", "200", "-y", "40", command)

    def screen(self):
        return self.run("capture-pane", "-p", "-t", "top", check=False).stdout

    def keys(self, *keys):
        self.run("send-keys", "-t", "top", *keys)

    def running(self):
        return self.run("has-session", "-t", "top", check=False).returncode == 0

    def kill(self):
        self.run("kill-server", check=False)


def row_of(screen, path):
    for line in screen.splitlines():
        if line.startswith(path + " "):
            return line.split()
    return None


def test_curses_screen_in_tmux(helpers, workdir):
    path, prod, cons = helpers.bus("screen", ["--count", "100", "--rate", "1000", "--forever"],
                                   ["--count", "100", "--forever"])
    tmux = Tmux(workdir)
    try:
        tmux.start(f"{TOP} --interval 0.5")
        first = wait_until(lambda: row_of(tmux.screen(), path), f"no row for {path} on the screen")
        screen = tmux.screen()
        assert "PATH" in screen and "STATUS" in screen and "MSG/S" in screen, screen
        assert first[1] == "alive" and first[2] == str(prod.pid) and first[4] == str(cons.pid), first
        # The screen refreshes by itself: the count of messages moves on.
        wait_until(lambda: (row := row_of(tmux.screen(), path)) and row[-1] != first[-1],
                   f"the MSGS of {path} never changed on the screen: {first}")
        # s: the next sort column, named in the title.
        tmux.keys("s")
        wait_until(lambda: "sort: mbps" in tmux.screen(), "s did not change the sort column")
        tmux.keys("q")
        wait_until(lambda: not tmux.running(), "q did not quit tachyon-top", timeout=15)

        # r: with an hour between samples, only the key can bring new counts.
        tmux.start(f"{TOP} --interval 3600")
        first = wait_until(lambda: row_of(tmux.screen(), path), f"no row for {path} on the screen")
        time.sleep(0.5)
        assert row_of(tmux.screen(), path)[-1] == first[-1]

        def refreshed():
            tmux.keys("r")
            time.sleep(0.3)
            row = row_of(tmux.screen(), path)
            return row and row[-1] != first[-1]

        wait_until(refreshed, "r did not refresh the screen", interval=0.2)
        tmux.keys("q")
        wait_until(lambda: not tmux.running(), "q did not quit tachyon-top", timeout=15)
    finally:
        tmux.kill()


def test_watch_screen_in_tmux(helpers, workdir):
    path, prod, _ = helpers.bus("watched", ["--count", "1500", "--size", "10"], ["--count", "1500"])
    tmux = Tmux(workdir)
    try:
        tmux.start(f"{TOP} --interval 0.5 --sort path")
        wait_until(lambda: row_of(tmux.screen(), path), f"no row for {path} on the screen")

        def watch_ours():
            # Other buses may come and go meanwhile: Home, Down to our row,
            # Enter; if another row was taken, back and again.
            rows = [line.split()[0] for line in tmux.screen().splitlines()[2:] if line.startswith("/")]
            if path not in rows:
                return None
            tmux.keys("Home", *(["Down"] * rows.index(path)), "Enter")
            time.sleep(0.3)
            screen = tmux.screen()
            if f"watching {path} " in screen:
                return screen
            tmux.keys("Escape")
            time.sleep(0.3)
            return None

        screen = wait_until(watch_ours, f"Enter did not watch {path}", interval=0.2)
        assert re.search(rf"producer +{prod.pid} bus_peer, attached: sent 1500 msgs, 15000 B", screen), screen
        assert re.search(r"status +alive", screen), screen
        tmux.keys("Escape")
        wait_until(lambda: "sort: path" in tmux.screen(), "Esc did not go back to the list")
        # s cycles through the columns and comes back.
        tmux.keys("s")
        wait_until(lambda: "sort: producer" in tmux.screen(), "s did not move to the next column")
        tmux.keys(*["s"] * 8)
        wait_until(lambda: "sort: path" in tmux.screen(), "nine presses of s did not come back to path")
        tmux.keys("q")
        wait_until(lambda: not tmux.running(), "q did not quit tachyon-top", timeout=15)
    finally:
        tmux.kill()


# ---- users -------------------------------------------------------------------------


def test_an_ordinary_user_sees_only_their_own_buses(helpers, workdir):
    if os.geteuid() != 0:
        pytest.skip("needs root, to start buses as root and as another user")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("this machine has no user 'nobody'")

    # The programs and the other user's sockets where that user can reach them.
    os.chmod(workdir, 0o755)
    bindir = workdir / "bin"
    bindir.mkdir(mode=0o755)
    top = shutil.copy(TOP, bindir / "tachyon-top")
    peer = shutil.copy(BUS_PEER, bindir / "bus_peer")
    for prog in (top, peer):
        os.chmod(prog, 0o755)
    theirs = workdir / "nobody"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, nobody.pw_uid, nobody.pw_gid)

    root_path, _, _ = helpers.bus("root-bus", ["--count", "1000"], ["--count", "1000"])
    n_path, n_prod, n_cons = helpers.bus("nobody-bus", ["--count", "1000"], ["--count", "1000"],
                                         user=nobody, sockdir=theirs, peer=peer)

    doc = top_json(top=str(top), user=nobody)
    assert doc["uid"] == nobody.pw_uid and doc["user"] == "nobody"
    bus = bus_at(doc, n_path)
    assert bus is not None, f"nobody's own bus not listed: {doc}"
    assert bus["status"] == "alive"
    assert bus["producer"]["pid"] == n_prod.pid and bus["consumer"]["pid"] == n_cons.pid
    assert bus["producer"]["messages"] == 1000
    assert bus_at(doc, root_path) is None, "root's bus shown to nobody"
    for b in doc["buses"]:
        assert all(h["uid"] == nobody.pw_uid for h in b["holders"]), f"another user's bus shown to nobody: {b}"

    doc = top_json()
    assert bus_at(doc, root_path) is not None and bus_at(doc, n_path) is None, \
        "root without --all-users sees only root's buses"
    doc = top_json("--all-users")
    assert bus_at(doc, root_path) is not None and bus_at(doc, n_path) is not None
    assert doc["all_users"] is True
