"""What a bench run that could not clean up after itself left behind, cleaned by the next run.

A `make bench` that starts its own suite makes databases `zhifa_bench<run>_*`, a vhost `zhifa-bench-<run>` (with
the management API) and the suite's service processes, and removes them all on its way out — also on Ctrl-C and
SIGTERM (tests/integration/test_bench_stopped.py). SIGKILL, an out-of-memory kill or a power cut leaves them: the
processes keep running, the databases and the vhost's queues keep their data. A bench against a running suite
leaves its raw path's scratch databases (`<DB_PREFIX>bench_raw_<run>…`); `bench_db` leaves `zhifa_benchdb_<id>`.

So each run writes a record, `.run/bench/runs/<run id>.json` (`BENCH_RUNS_DIR` for another directory), before it
makes any of them, and removes it after its own cleanup. `--keep-data` marks the record kept instead: those
databases are wanted (bigcases takes its templates from them), and a kept record is never cleaned. At its start a
run cleans every record whose run is gone — no process with its pid runs `services.simulator.bench…` — that is not
kept and names the same database server: the suite's service processes it had started stopped (found by their
AMQP_URI and DB_PREFIX; only for a run that started its suite, and only by `make bench`), its databases dropped (by the record's prefix), its vhost
deleted, and the record removed. A record whose cleanup fails stays for the next run. Databases no record names —
a running suite's, older runs', templates — are never touched.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from services.simulator.procfs import cmdline

ROOT = Path(__file__).resolve().parents[2]
MARK = "services.simulator.bench"  # (bench and bench_db: `python -m services.simulator.bench…`)


def runs_dir() -> Path:
    return Path(os.environ.get("BENCH_RUNS_DIR") or ROOT / ".run" / "bench" / "runs")


def register(run_id: str, *, prefix: str, mongo_uri: str, vhost: str | None = None, amqp_uri: str | None = None,
             directory: Path | None = None) -> Path:
    """Record this run before it makes anything: what a later run would clean if this one could not. `amqp_uri`
    (the one its suite's processes get) for a run that starts its own suite."""
    folder = directory or runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.json"
    _write(path, {"run_id": run_id, "pid": os.getpid(), "prefix": prefix, "mongo_uri": mongo_uri, "vhost": vhost,
                  "suite": amqp_uri is not None, "amqp_uri": amqp_uri, "kept": False,
                  "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return path


def keep(path: Path) -> None:
    """`--keep-data`: what the record names is wanted; no later run cleans it."""
    _write(path, {**json.loads(path.read_text(encoding="utf-8")), "kept": True})


def _write(path: Path, record: dict) -> None:
    """Whole or not at all (a run killed while writing leaves the record before, never half of one)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def release(path: Path) -> None:
    """The run cleaned up after itself."""
    path.unlink(missing_ok=True)


def bench_alive(pid: int) -> bool:
    """Whether `pid` is still a bench (a pid the system gave to another program since is not)."""
    return MARK in " ".join(cmdline(pid))


def abandoned(directory: Path | None = None, alive: Callable[[int], bool] = bench_alive) -> list[tuple[Path, dict]]:
    """The records of runs that are gone and were not kept (unreadable records are left as they are)."""
    folder = directory or runs_dir()
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            pid = int(record["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not record.get("kept") and not alive(pid):
            out.append((path, record))
    return out


def stop(pids: Iterable[int], wait: float = 10.0) -> None:
    """SIGTERM, then SIGKILL for those still running after `wait` seconds."""
    pids = list(pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # (ended meanwhile)
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
        time.sleep(0.2)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def clean(mongo_uri: str, drop: Callable[[str], Any], delete_vhost: Callable[[str], Any] | None,
          directory: Path | None = None, alive: Callable[[int], bool] = bench_alive,
          processes: Callable[[dict], list[int]] | None = None) -> list[str]:
    """Clean what the abandoned runs on this database server left (`drop(prefix)` drops the databases whose names
    start with it; `delete_vhost(name)`, None without the management API: a record with a vhost then stays;
    `processes(record)` finds the service processes of a run that started its suite, None where the caller cannot:
    such a record stays). One line per run cleaned or left, for the log."""
    lines = []
    for path, record in abandoned(directory, alive):
        if record.get("mongo_uri") != mongo_uri:
            continue  # (another server's: cleaned by a run on that one)
        prefix, vhost = record.get("prefix"), record.get("vhost")
        if not isinstance(prefix, str) or not prefix.startswith("zhifa_") or len(prefix) <= len("zhifa_"):
            lines.append(f"left {path.name}: its prefix {prefix!r} is not a bench run's")
            continue
        if record.get("suite") and processes is None:
            lines.append(f"left {path.name}: its suite's processes are found by `make bench`")
            continue
        try:
            if record.get("suite"):
                stop(processes(record))
            drop(prefix)
            if vhost:
                if delete_vhost is None:
                    lines.append(f"left {path.name}: vhost {vhost} needs the management API (RABBIT_MGMT_URI)")
                    continue
                delete_vhost(vhost)
        except Exception as exc:  # (the server refused or went away: the record stays for the next run)
            lines.append(f"left {path.name}: {type(exc).__name__}: {exc}")
            continue
        release(path)
        lines.append(f"cleaned what run {record.get('run_id')} (pid {record.get('pid')}, {record.get('started_at')}) "
                     f"left: databases {prefix}*" + (f", vhost {vhost}" if vhost else ""))
    return lines
