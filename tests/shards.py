"""How `make test` splits the suite between pytest processes run side by side (scripts/test_shards.py).

The suite waits more than it computes (services starting, messages crossing the broker, a browser
drawing): one pytest process keeps the two cores a quarter busy. Shards share the test servers —
every test has a RabbitMQ vhost and a database prefix of its own (tests/conftest.py) — and split the
test *files* (a module's fixtures stay in one process) so that each shard's recorded seconds are
about equal: longest first, each to the least loaded shard.

Seconds per file: `tests/durations.json` (committed; `python -m tests.shards --update` refreshes it
from this machine's last runs), then what this clone's runs recorded in `.run/test/durations-*.json`
(each pytest session writes its own). A file with no record counts DEFAULT_SECONDS per test.

    python -m tests.shards              # the split the next `make test` would use, with its seconds
    python -m tests.shards --update     # write the recorded seconds into tests/durations.json
"""
from __future__ import annotations

import glob
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "tests" / "durations.json"
RECORDED = ROOT / ".run" / "test"
DEFAULT_SECONDS = 0.5  # per test of a file never timed (most unit tests take less, most integration tests more)


def recorded_files() -> list[str]:
    return sorted(glob.glob(str(RECORDED / "durations-*.json")), key=os.path.getmtime)


def weights(path: str | None = None) -> dict[str, float]:
    """Seconds per test file: from `path` alone when given (the runner's snapshot, so that every shard
    splits alike), else the committed figures updated by this clone's records, oldest first."""
    if path:
        return _read(Path(path))
    merged = _read(COMMITTED)
    for recorded in recorded_files():
        merged.update(_read(Path(recorded)))
    return merged


def _read(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))} if isinstance(data, dict) else {}


def assign(files: list[str], shards: int, *, counts: dict[str, int] | None = None,
           seconds: dict[str, float] | None = None) -> list[set[str]]:
    """`files` split into `shards` sets of about equal seconds (longest first, each to the least loaded
    shard; ties by name, so every process computes the same split)."""
    if seconds is None:
        seconds = weights(os.environ.get("ZHIFA_TEST_WEIGHTS"))
    counts = counts or {}

    def cost(f: str) -> float:
        return seconds.get(f, DEFAULT_SECONDS * counts.get(f, 1))

    loads = [0.0] * shards
    split: list[set[str]] = [set() for _ in range(shards)]
    for f in sorted(files, key=lambda f: (-cost(f), f)):
        least = min(range(shards), key=lambda i: (loads[i], i))
        split[least].add(f)
        loads[least] += cost(f)
    return split


def record(durations: dict[str, float], tag: str) -> Path:
    """Write one session's seconds per file (`.run/test/durations-<tag>.json`)."""
    RECORDED.mkdir(parents=True, exist_ok=True)
    path = RECORDED / f"durations-{tag}.json"
    path.write_text(json.dumps({k: round(v, 2) for k, v in sorted(durations.items())}, indent=0) + "\n")
    return path


def snapshot(path: Path) -> Path:
    """The merged seconds written to `path`, for the shards of one run to read (ZHIFA_TEST_WEIGHTS)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(weights(), sort_keys=True) + "\n")
    return path


def main(argv: list[str]) -> int:
    seconds = weights()
    if "--update" in argv:
        COMMITTED.write_text(json.dumps({k: round(v, 1) for k, v in sorted(seconds.items())}, indent=1) + "\n")
        print(f"{COMMITTED.relative_to(ROOT)}: {len(seconds)} files, {sum(seconds.values()):.0f} s in all")
        return 0
    files = sorted(seconds)
    for shards in (2, 3):
        split = assign(files, shards, seconds=seconds)
        print(f"{shards} shards: " + " · ".join(f"{sum(seconds[f] for f in part):.0f} s ({len(part)} files)"
                                               for part in split))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
