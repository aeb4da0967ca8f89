"""SIGTERM (a CI timeout, `kill`) for the simulator's long runs (`bench`, `bigcases`): leave through the `finally`
blocks as Ctrl-C does, so the suite processes a run started are stopped and its databases removed.

The handler raises SystemExit(143). Python drops an exception raised while a `__del__` method or a weakref
callback runs ("Exception ignored in …"), and a signal's handler runs wherever the main thread is, so a SIGTERM
arriving while pymongo's client cleanup (`periodic_executor._on_executor_deleted`) ran was lost and the bench went
on with its phases (seen once in CI, 2026-12-05: tests/integration/test_bench_stopped.py waited 90 s). The
unraisable hook sees such a dropped exit and has the signal delivered again a moment later, once the callback has
returned.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

EXIT_CODE = 143  # 128 + SIGTERM, as a shell reports a process it terminated


def exit_on_sigterm() -> None:
    """From now on SIGTERM raises SystemExit(EXIT_CODE) in the main thread, also when it first lands in a callback."""
    signal.signal(signal.SIGTERM, _exit)
    previous = sys.unraisablehook

    def hook(unraisable) -> None:
        previous(unraisable)
        if isinstance(unraisable.exc_value, SystemExit) and unraisable.exc_value.code == EXIT_CODE:
            # dropped inside a callback: delivered again from another thread a moment later, once the main thread
            # has left the callback (a signal sent from here would land in this hook and be dropped as well)
            threading.Thread(target=_deliver_again, daemon=True, name="sigterm-again").start()

    sys.unraisablehook = hook


def _exit(_signum, _frame) -> None:
    sys.exit(EXIT_CODE)


def _deliver_again() -> None:
    time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGTERM)
