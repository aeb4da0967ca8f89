"""The split of `make test` into shards (tests/shards.py, scripts/test_shards.py, conftest's ZHIFA_TEST_SHARD)."""
import importlib.util
from pathlib import Path

import pytest

from tests import conftest, shards

ROOT = Path(__file__).resolve().parents[2]


def _runner():
    spec = importlib.util.spec_from_file_location("test_shards_runner", ROOT / "scripts" / "test_shards.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_file_lands_in_exactly_one_shard_and_the_loads_are_about_equal():
    seconds = {f"tests/t{i}.py": s for i, s in enumerate([100, 80, 60, 50, 40, 30, 20, 10, 5, 5, 1, 1])}
    split = shards.assign(sorted(seconds), 2, seconds=seconds)
    assert set().union(*split) == set(seconds)
    assert not split[0] & split[1]
    loads = [sum(seconds[f] for f in part) for part in split]
    assert abs(loads[0] - loads[1]) <= 5, loads  # longest first, each to the least loaded shard


def test_the_split_does_not_depend_on_the_order_files_are_given_in():
    seconds = {"a.py": 3.0, "b.py": 3.0, "c.py": 3.0, "d.py": 1.0}
    assert shards.assign(["d.py", "c.py", "b.py", "a.py"], 3, seconds=seconds) == \
        shards.assign(["a.py", "b.py", "c.py", "d.py"], 3, seconds=seconds)


def test_a_file_never_timed_counts_its_tests():
    # many untimed tests weigh more than one timed second: the new file gets a shard of its own
    split = shards.assign(["old.py", "new.py", "small.py"], 2, counts={"new.py": 40},
                          seconds={"old.py": 10.0, "small.py": 1.0})
    assert {"new.py"} in split


def test_the_runners_snapshot_is_what_every_shard_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(shards, "COMMITTED", tmp_path / "durations.json")
    monkeypatch.setattr(shards, "RECORDED", tmp_path / "run")
    shards.COMMITTED.write_text('{"a.py": 1.0, "b.py": 2.0}')
    shards.record({"b.py": 7.5}, "1of2")  # this clone's newer figure wins
    snap = shards.snapshot(tmp_path / "run" / "weights.json")
    assert shards.weights(str(snap)) == {"a.py": 1.0, "b.py": 7.5}
    assert shards.weights(str(tmp_path / "missing.json")) == {}


@pytest.mark.parametrize("spec", ["0/2", "3/2", "x", "1/", "-1/2"])
def test_a_wrong_shard_spec_is_refused_with_the_variable_named(monkeypatch, spec):
    monkeypatch.setenv("ZHIFA_TEST_SHARD", spec)
    with pytest.raises(pytest.UsageError, match="ZHIFA_TEST_SHARD"):
        conftest._shard()


def test_the_shard_spec_is_read(monkeypatch):
    monkeypatch.setenv("ZHIFA_TEST_SHARD", "2/3")
    assert conftest._shard() == (2, 3)
    monkeypatch.delenv("ZHIFA_TEST_SHARD")
    assert conftest._shard() is None


def test_the_runner_adds_up_the_shards_summaries_without_the_deselected():
    runner = _runner()
    assert runner.total(["972 passed, 974 deselected in 467.34s (0:07:47)",
                         "1 failed, 972 passed, 973 deselected in 435.29s (0:07:15)"]) == "1944 passed, 1 failed"
    assert runner.total([]) == "no tests ran"
    for line in ("=============== 972 passed, 974 deselected in 467.34s (0:07:47) ================",
                 "69 passed, 885 deselected in 9.08s"):  # (-q: undecorated)
        assert runner.SUMMARY.match(line).group(1).startswith(line.strip("= ")[:20]), line
    assert runner.SUMMARY.match("[  9%] tests/unit/test_x.py passed something") is None


def test_the_runner_names_the_failing_tests_again_at_the_end(tmp_path, monkeypatch, capsys):
    """A CI log keeps its tail: the tests that failed are printed after the total, with their shard."""
    runner = _runner()
    (tmp_path / "test_a.py").write_text("def test_fine():\n    pass\n")
    (tmp_path / "test_b.py").write_text("def test_broken():\n    assert 1 == 2, 'one is not two'\n")
    monkeypatch.setattr(runner, "ROOT", tmp_path)
    monkeypatch.setattr(runner, "snapshot", lambda path: tmp_path / "weights.json")
    monkeypatch.setenv("CI", "true")  # pytest writes the failure's message whole
    code = runner.main(["2", "-p", "no:cacheprovider", "-ra", "-q", str(tmp_path)])
    out = capsys.readouterr().out
    tail = out[out.index("in all:"):]
    assert code == 1
    assert "test_b.py::test_broken - AssertionError: one is not two" in tail, tail
    assert "test_fine" not in tail


def test_the_runner_refuses_a_shard_count_that_is_not_a_positive_number(capsys):
    runner = _runner()
    assert runner.main([]) == 2
    assert runner.main(["x"]) == 2
    assert runner.main(["0"]) == 2
