"""Run the test suite as N pytest processes side by side against the same test servers (`make test`).

    python scripts/test_shards.py N [pytest arguments...]

Each process (a *shard*) runs the test files tests/shards.py gives it (ZHIFA_TEST_SHARD=k/N, every
shard reading one snapshot of the recorded seconds per file). Their lines are printed as they come,
each prefixed with its shard ("[1/2] "); at the end, each shard's summary line, the total and every
failing test's line from the shards' short summaries again (a CI log that keeps only its tail still
names what failed). Exits
0 when every shard passed, else with the first failing shard's pytest exit code. N = 1 is plain pytest.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.shards import RECORDED, snapshot  # noqa: E402

# pytest's last line: "=== 972 passed, 974 deselected in 467.34s (0:07:47) ===" (undecorated with -q)
SUMMARY = re.compile(r"^=*\s*(.*\b(passed|failed|error|errors|skipped|deselected|no tests ran)\b.* in [0-9.]+s\b.*?)\s*=*$")
# a line of pytest's short test summary (-ra) naming a test that failed or errored
FAILURE = re.compile(r"^(FAILED|ERROR) \S")


def total(summaries) -> str:
    """The shards' summary counts added up ("1945 passed, 1 failed"; what each shard deselected is the
    others' share, left out)."""
    counts: dict[str, int] = {}
    for summary in summaries:
        for n, word in re.findall(r"(\d+) ([a-z]+)", summary):
            if word != "deselected":
                counts[word] = counts.get(word, 0) + int(n)
    return ", ".join(f"{n} {word}" for word, n in counts.items()) or "no tests ran"


def main(argv: list[str]) -> int:
    if not argv or not argv[0].isdigit() or int(argv[0]) < 1:
        print(__doc__, file=sys.stderr)
        return 2
    shards, args = int(argv[0]), argv[1:]
    pytest = [sys.executable, "-m", "pytest", *args]
    if shards == 1:
        return subprocess.call(pytest, cwd=ROOT)
    weights = snapshot(RECORDED / f"weights-{os.getpid()}.json")
    out_lock = threading.Lock()
    summaries: dict[int, str] = {}
    failures: dict[int, list[str]] = {}
    procs: list[subprocess.Popen] = []
    started = time.monotonic()
    for k in range(1, shards + 1):
        env = dict(os.environ, ZHIFA_TEST_SHARD=f"{k}/{shards}", ZHIFA_TEST_WEIGHTS=str(weights),
                   PYTHONUNBUFFERED="1")
        procs.append(subprocess.Popen(pytest, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, errors="replace", bufsize=1))

    def pump(k: int, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            match = SUMMARY.match(line.strip())
            if match:
                summaries[k] = match.group(1)
            elif FAILURE.match(line):
                failures.setdefault(k, []).append(line)
            with out_lock:
                print(f"[{k}/{shards}] {line}", flush=True)

    pumps = [threading.Thread(target=pump, args=(k, p), daemon=True) for k, p in enumerate(procs, 1)]
    for t in pumps:
        t.start()
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        # Ctrl-C in a terminal reached the shards too (same process group): a second SIGINT would cut
        # their fixtures' teardown short (service processes left running), so they get time to stop
        # first; a shard still running then (the signal came to this process alone) is sent one
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(p.poll() is None for p in procs):
            time.sleep(0.2)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        codes = [p.wait() for p in procs]
    for t in pumps:
        t.join(timeout=5)
    weights.unlink(missing_ok=True)
    print(f"zhifa: {shards} test shards side by side, {time.monotonic() - started:.0f} s:")
    for k, code in enumerate(codes, 1):
        print(f"  shard {k}/{shards}: {summaries.get(k, 'no summary')} (exit {code})")
    print(f"  in all: {total(summaries.values())}")
    for k in sorted(failures):
        for line in failures[k]:
            print(f"  [{k}/{shards}] {line}")
    failed = [code for code in codes if code != 0]
    return failed[0] if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
