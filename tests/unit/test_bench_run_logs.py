"""The bench keeps the service logs of its last runs only (services/simulator/bench.py `prune_run_logs`): each run's
processes write into .run/bench/<run id>/, ≈ 50–60 MB a `--knee` run at the default log level."""
import os

import pytest

from services.simulator import bench


def _run_dir(base, name, mtime, files=("gateway.log", "penalty.log")):
    d = base / name
    d.mkdir()
    for f in files:
        (d / f).write_text("line\n")
    os.utime(d, (mtime, mtime))
    return d


def test_the_newest_runs_are_kept_and_nothing_else_is_touched(tmp_path):
    runs = [_run_dir(tmp_path, f"{i:06x}", 1_000_000 + i * 10) for i in range(12)]
    other = _run_dir(tmp_path, "abc123", 1.0, files=("gateway.log", "notes.txt"))  # not only logs: kept
    named = _run_dir(tmp_path, "mylogs", 1.0)  # not a run id: kept
    (tmp_path / "latest.json").write_text("{}")
    (tmp_path / ".lock").write_text("")
    removed = bench.prune_run_logs(tmp_path, 5)
    assert sorted(removed) == sorted(runs[:7])  # the oldest seven
    assert all(not d.exists() for d in runs[:7]) and all(d.is_dir() for d in runs[7:])
    assert other.is_dir() and named.is_dir()
    assert (tmp_path / "latest.json").exists() and (tmp_path / ".lock").exists()
    assert bench.prune_run_logs(tmp_path, 5) == []  # nothing more to do


def test_keep_zero_removes_every_run_and_a_missing_directory_is_no_error(tmp_path):
    runs = [_run_dir(tmp_path, f"{i:06x}", 1_000_000 + i) for i in range(3)]
    assert sorted(bench.prune_run_logs(tmp_path, 0)) == sorted(runs)
    assert bench.prune_run_logs(tmp_path / "absent", 3) == []



def test_a_negative_count_is_refused_with_the_option_named(capsys):
    with pytest.raises(SystemExit) as stopped:
        bench.main(["--keep-run-logs", "-1"])
    assert stopped.value.code == 2
    assert "--keep-run-logs: 应不小于 0，收到 -1" in capsys.readouterr().err
