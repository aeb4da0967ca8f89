"""The database command listener (services/kernel/mongo.py) and the bench's commands-per-event table."""
from types import SimpleNamespace

from prometheus_client import generate_latest

from services.kernel import metrics
from services.kernel.mongo import CommandCounter, collection_label
from services.simulator.bench import commands_per_event, parse_db_commands


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
    assert parsed[("unit-db-listener", "cases", "find")] == [1.0, 0.001]


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
