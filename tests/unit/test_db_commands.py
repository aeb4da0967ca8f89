"""The database command listener (services/kernel/mongo.py) and the bench's commands-per-event table."""
from types import SimpleNamespace

import pytest

from prometheus_client import generate_latest

from services.kernel import metrics
from services.kernel.mongo import CommandCounter, collection_label
from services.simulator.bench import commands_per_event, due_work_per_event, parse_db_commands, parse_due_work


def sample(name: str, service: str, collection: str, command: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, {"service": service, "collection": collection, "command": command})
    return value or 0.0


def started(request_id: int, name: str, command: dict):
    return SimpleNamespace(request_id=request_id, command_name=name, command=command)


def ended(request_id: int, micros: int):
    return SimpleNamespace(request_id=request_id, duration_micros=micros)


def test_collection_label_folds_per_key_collections_and_names_getmore_targets():
    assert collection_label("find", {"find": "cases", "filter": {}}) == "cases"
    assert collection_label("update", {"update": "case_list.511322-sthj.filed.0"}) == "case_list.*"
    assert collection_label("getMore", {"getMore": 123456789, "collection": "officers"}) == "officers"
    assert collection_label("ping", {"ping": 1}) == "-"
    assert collection_label("listCollections", {"listCollections": 1}) == "-"


def test_listener_counts_commands_and_time_by_service_collection_command():
    counter = CommandCounter("unit-db-listener")
    before = sample("zhifa_db_commands_total", "unit-db-listener", "case_list.*", "update")
    counter.started(started(1, "update", {"update": "case_list.a.filed.0", "updates": []}))
    counter.started(started(2, "update", {"update": "case_list.b.decided.1", "updates": []}))
    counter.started(started(3, "find", {"find": "cases", "filter": {"_id": "x"}}))
    counter.succeeded(ended(1, 2500))
    counter.failed(ended(2, 500))   # a failed command is counted and timed too
    counter.succeeded(ended(3, 1000))
    counter.succeeded(ended(99, 7000))  # an end without a start (listener added late): ignored
    assert sample("zhifa_db_commands_total", "unit-db-listener", "case_list.*", "update") - before == 2
    assert sample("zhifa_db_commands_total", "unit-db-listener", "cases", "find") == 1
    assert abs(sample("zhifa_db_command_seconds_total", "unit-db-listener", "case_list.*", "update") - 0.003) < 1e-9
    assert abs(sample("zhifa_db_command_seconds_total", "unit-db-listener", "cases", "find") - 0.001) < 1e-9
    assert counter._in_flight == {}  # nothing kept once every command ended
    page = generate_latest(metrics.REGISTRY).decode()
    parsed = parse_db_commands(page)
    assert parsed[("unit-db-listener", "cases", "find")] == [1.0, 0.001, 1.0]


def test_listener_counts_the_operations_a_write_command_carries():
    counter = CommandCounter("unit-db-ops")
    counter.started(started(1, "update", {"update": "cases_due", "updates": [{"q": {}, "u": {}}] * 50}))
    counter.started(started(2, "insert", {"insert": "cases", "documents": [{"_id": 1}, {"_id": 2}]}))
    counter.started(started(3, "delete", {"delete": "cases_outbox", "deletes": [{"q": {}, "limit": 1}] * 7}))
    counter.started(started(4, "find", {"find": "cases", "filter": {"_id": "x"}}))
    counter.started(started(5, "update", {"update": "cases_due"}))  # (no statements seen: none counted)
    for request_id in range(1, 6):
        counter.succeeded(ended(request_id, 100))
    ops = lambda collection, command: sample("zhifa_db_ops_total", "unit-db-ops", collection, command)  # noqa: E731
    assert (ops("cases_due", "update"), ops("cases", "insert"), ops("cases_outbox", "delete"), ops("cases", "find")) \
        == (50, 2, 7, 1)
    assert sample("zhifa_db_commands_total", "unit-db-ops", "cases_due", "update") == 2
    parsed = parse_db_commands(generate_latest(metrics.REGISTRY).decode())
    assert parsed[("unit-db-ops", "cases_due", "update")] == [2.0, 0.0002, 50.0]


def test_a_page_without_operations_counts_each_command_as_one():
    page = ('zhifa_db_commands_total{service="penalty",collection="cases",command="update"} 4.0\n'
            'zhifa_db_command_seconds_total{service="penalty",collection="cases",command="update"} 0.5\n')
    assert parse_db_commands(page) == {("penalty", "cases", "update"): [4.0, 0.5, 4.0]}


def test_commands_per_event_ranks_service_by_collection():
    before = {("penalty", "cases", "find"): [10.0, 0.1], ("penalty", "cases", "update"): [5.0, 0.1]}
    after = {("penalty", "cases", "find"): [30.0, 0.3], ("penalty", "cases", "update"): [25.0, 0.5],
             ("penalty", "case_list_at", "findAndModify"): [10.0, 0.05],
             ("handover", "penalty_cases", "find"): [4.0, 0.02], ("gateway", "seen", "insert"): [0.0, 0.0]}
    out = commands_per_event(before, after, events=10, top=2)
    assert out["total_per_event"] == 5.4  # (20 + 20 + 10 + 4) / 10
    assert out["by_service"] == {"penalty": 5.0, "handover": 0.4}
    assert [(r["service"], r["collection"]) for r in out["top"]] == [("penalty", "cases"), ("penalty", "case_list_at")]
    assert out["top"][0]["commands_per_event"] == 4.0 and out["top"][0]["by_command"] == {"find": 2.0, "update": 2.0}
    assert out["top"][0]["wait_ms_per_event"] == 60.0  # (0.2 + 0.4) s / 10 events
    assert out["rest_per_event"] == 0.4 and [r["collection"] for r in out["rest"]] == ["penalty_cases"]
    assert out["ops_per_event"] == 5.4 and out["top"][0]["ops_per_event"] == 4.0  # (no operations: one per command)


def test_commands_per_event_ranks_by_the_operations_the_commands_carry():
    before = {("penalty", "cases", "update"): [0.0, 0.0, 0.0], ("penalty", "case_list_at", "update"): [0.0, 0.0, 0.0]}
    after = {("penalty", "cases", "update"): [30.0, 0.3, 40.0], ("penalty", "case_list_at", "update"): [2.0, 0.1, 100.0],
             ("personnel", "officers", "find"): [5.0, 0.01, 5.0]}
    out = commands_per_event(before, after, events=10)
    assert [r["collection"] for r in out["top"]] == ["case_list_at", "cases", "officers"]
    assert out["top"][0]["ops_per_event"] == 10.0 and out["top"][0]["commands_per_event"] == 0.2
    assert out["ops_per_event"] == 14.5 and out["ops_by_service"] == {"penalty": 14.0, "personnel": 0.5}


def test_window_cpu_is_the_phase_s_own_cpu_per_event_and_the_machine_s_busy_share():
    import os

    from services.simulator.bench import window_cpu

    cores = os.cpu_count() or 1
    before = {"t": 100.0, "busy": 50.0, "cpu": {"penalty": 10.0, "ferretdb": 20.0, "api": 1.0}}
    after = {"t": 110.0, "busy": 50.0 + 8.0 * cores, "cpu": {"penalty": 15.5, "ferretdb": 26.0, "api": 1.0}}
    out = window_cpu(before, after, events=2000)
    assert out["window_s"] == 10.0 and out["machine_busy_share"] == 0.8
    assert list(out["processes"]) == ["ferretdb", "penalty"]  # busiest first; a process that used nothing is left out
    assert out["processes"]["ferretdb"] == {"cores": 0.6, "ms_per_event": 3.0}
    assert out["processes"]["penalty"] == {"cores": 0.55, "ms_per_event": 2.75}
    assert out["ms_per_event_all"] == 5.75


def test_make_client_with_and_without_a_service():
    from services.kernel.mongo import make_client

    plain = make_client("mongodb://127.0.0.1:1/", 200)  # no listener: no service to count for
    counted = make_client("mongodb://127.0.0.1:1/", 200, service="unit")
    try:
        listeners = counted.options.event_listeners
        assert [type(x).__name__ for x in listeners] == ["CommandCounter"] and listeners[0].service == "unit"
        assert not plain.options.event_listeners
    finally:
        plain.close()
        counted.close()


def test_metrics_page_narrowed_by_name_holds_only_those_families():
    counter = CommandCounter("unit-db-narrowed")
    counter.started(started(41, "find", {"find": "cases", "filter": {}}))
    counter.succeeded(ended(41, 100))
    metrics.CALLS.labels("unit-narrowed", "handle", "case.*").inc()
    whole = metrics.metrics_payload()[0].decode()
    narrowed = metrics.metrics_payload(["zhifa_entrypoint_calls_total", "zhifa_entrypoint_errors_total"])[0].decode()
    assert "zhifa_db_commands_total" in whole and "zhifa_db_commands_total" not in narrowed
    assert 'zhifa_entrypoint_calls_total{entrypoint="handle",event_type="case.*",service="unit-narrowed"}' in narrowed
    assert not [line for line in narrowed.splitlines()
                if line and not line.startswith("#") and not line.startswith("zhifa_entrypoint_")]
    assert len(narrowed) < len(whole)
    assert "zhifa_db_commands_total" in metrics.metrics_payload([""])[0].decode()  # (an empty name: the whole page)


def test_metrics_http_app_reads_the_name_query():
    metrics.CALLS.labels("unit-narrowed-app", "handle", "case.*").inc()
    answered = {}
    body = b"".join(metrics._app({"PATH_INFO": "/metrics",
                                  "QUERY_STRING": "name%5B%5D=zhifa_entrypoint_calls_total"},
                                 lambda status, headers: answered.update(status=status)))
    assert answered["status"].startswith("200")
    lines = [line for line in body.decode().splitlines() if line and not line.startswith("#")]
    assert any(line.startswith('zhifa_entrypoint_calls_total{entrypoint="handle",event_type="case.*",'
                               'service="unit-narrowed-app"}') for line in lines)
    assert all(line.startswith("zhifa_entrypoint_calls_") for line in lines)  # (its family: _total and _created)


def test_database_makes_each_collection_once():
    import pymongo

    from services.kernel.mongo import CollectionsOnce, database

    client = pymongo.MongoClient("mongodb://127.0.0.1:1", connect=False)
    db = database(client, "unit-once")
    assert db.cases is db.cases is db["cases"] and db["case_list.a.filed.0"] is db["case_list.a.filed.0"]
    assert db.cases.database is db and db == client["unit-once"] and db.cases.full_name == "unit-once.cases"
    try:
        db._private
    except AttributeError:
        pass
    else:
        raise AssertionError("a private name must not be taken for a collection")
    small = CollectionsOnce(client, "unit-once-small")
    small.MAX_KEPT = 2
    first = small.a
    small.b, small.c  # (past the bound: forgotten, made again)
    assert small.a is not first and small.a.name == "a"
    client.close()


def test_metrics_page_asked_for_names_it_does_not_hold_is_empty_not_an_error():
    answered = {}
    hostile = "name%5B%5D=%00%FF%27%22%3Cscript%3E&name%5B%5D=" + "x" * 5000 + "&name%5B%5D=&name%5B%5D"
    body = b"".join(metrics._app({"PATH_INFO": "/metrics", "QUERY_STRING": hostile},
                                 lambda status, headers: answered.update(status=status)))
    assert answered["status"].startswith("200")
    assert [line for line in body.decode().splitlines() if line and not line.startswith("#")] == []


def test_a_database_timeout_that_is_not_a_positive_integer_is_refused_with_the_setting_named():
    from nameko import config as nameko_config

    from services.kernel.mongo import make_client

    for bad in ("abc", 0, "0", -5, "1.5", 1.5, True, "1e999", float("inf"), [5000], {"ms": 5000}, "5000; drop"):
        with nameko_config.patch({"MONGO_TIMEOUT_MS": bad}, clear=False):
            with pytest.raises(ValueError, match="MONGO_TIMEOUT_MS must be a positive integer"):
                make_client("mongodb://127.0.0.1:1/")
    for good in (5000, "250"):  # (as YAML gives it, and as text)
        with nameko_config.patch({"MONGO_TIMEOUT_MS": good}, clear=False):
            client = make_client("mongodb://127.0.0.1:1/")
            assert client.options.server_selection_timeout == int(good) / 1000
            client.close()


def test_a_companion_database_is_made_once_per_database_object_through_its_client():
    import pymongo

    from services.kernel.mongo import CollectionsOnce, companion, database

    one, two = (pymongo.MongoClient("mongodb://127.0.0.1:1", connect=False, tz_aware=tz) for tz in (True, False))
    db = database(one, "unit-penalty")
    lists = companion(db, "_caselist")
    assert lists is companion(db, "_caselist") and isinstance(lists, CollectionsOnce)
    assert lists.name == "unit-penalty_caselist" and lists.client is one and lists.codec_options.tz_aware
    assert companion(db, "") is db and companion(db, "_other") is not lists
    other = companion(database(two, "unit-penalty"), "_caselist")  # (equal to `lists` as pymongo compares them)
    assert other is not lists and other.client is two and not other.codec_options.tz_aware
    assert type(companion(one["plain"], "_x")) is pymongo.database.Database


def test_due_work_per_event_is_the_difference_of_two_readings_by_cause():
    before = ('zhifa_deadline_sweep_judged_total{service="penalty"} 10.0\n'
              'zhifa_marked_due_total{cause="officer",service="penalty"} 4.0\n')
    after = ('zhifa_deadline_sweep_judged_total{service="penalty"} 210.0\n'
             'zhifa_marked_due_total{cause="officer",service="penalty"} 104.0\n'
             'zhifa_marked_due_total{cause="party",service="penalty"} 50.0\n'
             'zhifa_marked_due_total{cause="item",service="penalty"} 0.0\n'
             'zhifa_projection_cache_total{kind="any",result="unknown",service="penalty"} 30.0\n'
             'zhifa_projection_cache_total{kind="officers",result="hit",service="penalty"} 900.0\n')
    other = 'zhifa_deadline_sweep_judged_total{service="inspection"} 7.0\n'
    work = due_work_per_event({"a": before, "b": other}, {"a": after, "b": other, "c": after}, 100)
    # (page c was not read before: left out; page b did nothing in between)
    assert work == {"sweep_judged_per_event": 2.0, "marked_due_per_event": 1.5,
                    "marked_due_by_cause": {"officer": 1.0, "party": 0.5}, "checked_unknown_per_event": 0.3}
    assert parse_due_work("zhifa_marked_due_total_created{cause=\"x\"} 1.7e9\n") == {}


def test_the_counters_the_sweep_and_the_marks_feed_are_on_the_metrics_page():
    metrics.SWEEP_JUDGED.labels("t-due").inc(3)
    metrics.MARKED_DUE.labels("t-due", "officer").inc(2)
    work = parse_due_work(generate_latest(metrics.REGISTRY).decode())
    assert work["judged"] >= 3 and work["marked:officer"] >= 2
