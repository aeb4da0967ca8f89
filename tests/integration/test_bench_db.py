"""`python -m services.simulator.bench_db` on the real FerretDB: each mode (`--side-writes`, `--command-cost`,
`--case-list`) sends what it says as the kernel or the service sends it and checks what it did (no timing is
asserted: rule 5, `make bench`)."""
import json

import pymongo

from services.kernel import config
from services.simulator import bench_db


def run(servers, monkeypatch, tmp_path, *args: str) -> dict:
    """`bench_db.main(args)` against the test servers; the JSON result it wrote."""
    monkeypatch.setenv("MONGO_URI", servers["MONGO_URI"])
    monkeypatch.setenv("AMQP_URI", servers["AMQP_URI"])
    out = tmp_path / "result.json"
    assert bench_db.main([*args, "--out", str(out)]) == 0
    return json.loads(out.read_text(encoding="utf-8"))


def assert_scratch_dropped(servers) -> None:
    client = pymongo.MongoClient(servers["MONGO_URI"], serverSelectionTimeoutMS=3000)
    try:
        assert not [n for n in client.list_database_names() if n.startswith("zhifa_benchdb_")]  # dropped
    finally:
        client.close()


def test_side_writes_are_each_applied_once_and_priced_per_operation(servers, monkeypatch, tmp_path, capsys):
    result = run(servers, monkeypatch, tmp_path, "--side-writes", "--packed", "--size-kb", "4", "--ops", "120")
    labels = [p["op"] for p in result["phases"]]
    assert len(labels) == 10 and labels[0].startswith("insert") and labels[-1].endswith("(a save)")
    assert all(p["ops"] == 120 and "mongodb" in p["db_cpu_ms_per_op"] for p in result["phases"])
    assert result["check_version_3"] == 120  # every case made due once (version 2), then saved over it (3)
    printed = capsys.readouterr().out
    assert "$addToSet to a 120-case reference document" in printed and "写回核对：120/120" in printed
    assert_scratch_dropped(servers)


def test_the_side_write_phases_change_what_the_phases_before_them_left():
    class Recording:
        def __init__(self, name):
            self.name = name

    class Db:
        def __getattr__(self, name):
            return Recording(name)

    phases = bench_db.side_write_phases(Db(), [f"c{i}" for i in range(120)], {"version": 1})
    assert [len(bulks) for _, bulks, _, _ in phases] == [3] * 10  # 50 + 50 + 20: MAX_OPS per command
    assert [col.name for *_, col in phases] == ["side_small"] * 6 + ["side_refs", "side_refs_grown"] + ["side_cases"] * 2


def test_counts_that_are_not_positive_integers_are_refused_with_a_reason(capsys):
    import pytest

    for bad in (["--ops", "0"], ["--ops", "-3"], ["--clients", "zero"], ["--size-kb", "1.5"]):
        with pytest.raises(SystemExit) as exited:
            bench_db.main(["--side-writes", *bad])
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert bad[0] in err and ("应不小于 1" in err or "应为整数" in err), err


def test_command_cost_sends_the_same_operations_1_5_and_50_to_a_command(servers, monkeypatch, tmp_path, capsys):
    result = run(servers, monkeypatch, tmp_path, "--command-cost", "--ops", "100")
    phases = result["phases"]
    assert [p["op"].split(",")[0] for p in phases] == ["insert"] * 3 + ["$set by _id"] * 3 + ["find by _id"] * 3
    assert [p["commands"] for p in phases] == [100, 20, 2] * 3 and all(p["ops"] == 100 for p in phases)
    assert all(p["db_cpu_ms_per_command_total"] is not None for p in phases)
    assert result["check_command_cost"] == 300  # every document of the three insert phases modified once
    assert "核对：300/300 条文档经 $set 修改" in capsys.readouterr().out
    assert_scratch_dropped(servers)


def test_one_mode_per_run_two_are_refused_with_a_reason(capsys):
    import pytest

    with pytest.raises(SystemExit) as exited:
        bench_db.main(["--side-writes", "--command-cost"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--command-cost" in err and "--side-writes" in err
    with pytest.raises(SystemExit) as exited:  # a case's stages synced one after another
        bench_db.main(["--case-list", "--clients", "2"])
    assert exited.value.code == 2 and "--clients 1" in capsys.readouterr().err


def test_case_list_prices_a_unit_s_syncs_per_move_and_leaves_every_case_listed_once(servers, monkeypatch, tmp_path,
                                                                                    capsys):
    result = run(servers, monkeypatch, tmp_path, "--case-list", "--ops", "160")
    phases = result["phases"]
    assert [p["op"].split(",")[0] for p in phases] == ["case list: new cases", "case list: moves"]
    stages = len(bench_db.CASE_LIST_STAGES)
    assert [p["ops"] for p in phases] == [160, 160 * (stages - 1)]  # one sync per case and unit
    units = -(-160 // int(config.get("BATCH_MAX")))  # units of work of ≤ BATCH_MAX cases per stage
    assert [p["commands"] for p in phases] == [units, units * (stages - 1)]
    assert all("client_cpu_ms_per_op" in p and "mongodb" in p["db_cpu_ms_per_op"] for p in phases)
    # every case listed once under its last stage, the counters equal to a recount of the rows
    assert result["check_case_list"] == {"listed": 160, "under_last_stage": 160, "counters_wrong": 0}
    assert "核对：160/160 件案件列在最后环节" in capsys.readouterr().out
    assert_scratch_dropped(servers)
