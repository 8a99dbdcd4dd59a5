"""The asyncio consumer example, run briefly on each loop: both feeds and the
timer are served by one loop, and every tick either feed sent arrives."""
import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_two_buses_and_a_timer_on_one_loop(loop):
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    args = [sys.executable, os.path.join(HERE, "consumer.py"), "--duration", "2.5"]
    if loop == "uvloop":
        args.append("--uvloop")
    run = subprocess.run(args, capture_output=True, text=True, timeout=120)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert "consuming quotes, trades on %s" % ("uvloop" if loop == "uvloop" else "asyncio") in out
    rate_lines = [line for line in out.splitlines() if line.startswith("t=")]
    assert rate_lines, out  # the timer ran while both buses were consumed
    assert all("quotes" in line and "trades" in line for line in rate_lines)
    for feed in ("quotes", "trades"):
        m = re.search(r"^%s: (\d+) ticks received of (\d+) sent, 0 lost, 0 out of order$" % feed, out, re.M)
        assert m, out
        assert int(m.group(1)) == int(m.group(2)) > 0
