"""SIGTERM ends a simulator run through its `finally` blocks (services/simulator/stopping.py), also when the signal
first lands while a `__del__` or weakref callback runs — where Python drops the handler's SystemExit ("Exception
ignored in …"): a real signal, in a process of its own."""
import subprocess
import sys

SCRIPT = r"""
import signal, time
from services.simulator.stopping import exit_on_sigterm

exit_on_sigterm()

class Dropped:
    def __del__(self):
        signal.raise_signal(signal.SIGTERM)  # the handler runs here, inside __del__
        for _ in range(1000):  # (bytecodes for the handler to run at)
            pass

try:
    Dropped()
    for _ in range(100):
        time.sleep(0.01)
    print("went on")
finally:
    print("cleaned up")
"""


def test_a_sigterm_that_first_lands_in_a_callback_still_ends_the_run_through_its_finally_blocks():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 143, done
    assert "cleaned up" in done.stdout and "went on" not in done.stdout
    assert "Exception ignored in" in done.stderr  # (it did land in the callback first)


def test_a_sigterm_elsewhere_ends_the_run_at_once():
    script = SCRIPT.replace("    Dropped()\n", "    signal.raise_signal(signal.SIGTERM)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 143 and "cleaned up" in done.stdout and "went on" not in done.stdout, done
    assert "Exception ignored" not in done.stderr
