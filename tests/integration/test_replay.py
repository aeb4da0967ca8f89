"""Replay (services/kernel/replay.py, services/simulator/bench_replay.py) on a real MongoDB-wire server:
a rule's number changed by a department plugin, then a replay of the stored facts, raises the finding
the new number calls for (and a replay back under the old number resolves it); a replay under
unchanged rules writes nothing."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pymongo
import pytest

from plugins.hookspecs import hookimpl
from plugins.host import build_plugin_manager
from services.kernel.replay import offline, replay_service
from services.personnel.service import PersonnelService
from services.simulator import bench_replay
from tests.helpers import SCJG, credential_issued, envelope, officer_registered

CST = timezone(timedelta(hours=8))
AS_OF = datetime(2024, 12, 2, 9, 0, tzinfo=CST)  # after the yearly training deadline (11-15)
REPLAY_AT = AS_OF + timedelta(hours=1)           # the facts have settled (arrival_settle_seconds)
OFFICER = "511322-scjg-0701"
KEY = f"PER-TRAIN-HOURS:training_year:{OFFICER}/2024"


class StricterTraining:
    """A department plugin raising the yearly training hours of 市场监管局 from 20 to 30."""

    @hookimpl
    def zhifa_dept_settings(self, dept):
        return {"personnel": {"training_hours_per_year": 30}} if dept == SCJG else None


def at(fact: dict, when: str) -> dict:
    return {**fact, "occurred_at": f"{when}T09:00:00+08:00"}


def host(*plugins):
    found = build_plugin_manager(enabled=[])
    for number, plugin in enumerate(plugins):
        found.register(plugin, f"test-{number}")
    return found


@pytest.fixture
def stored(zhifa_config):
    """One officer's year in the personnel database: 24 training hours (enough under 20, short of 30)."""
    client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True)
    db = client[f"{zhifa_config['DB_PREFIX']}personnel"]
    service = offline(PersonnelService, db, host=host(), preset="seed001")
    repo = service.repository(service.aggregate("officer"))
    facts = [at(officer_registered(OFFICER), "2024-01-05"), at(credential_issued(OFFICER, "川A5113220701"), "2024-01-10"),
             at(envelope("training.completed", {"officer_id": OFFICER, "completed_on": "2024-05-16", "hours": 16,
                                                "topic": "《行政处罚法》专题培训"}), "2024-05-16"),
             at(envelope("training.completed", {"officer_id": OFFICER, "completed_on": "2024-09-10", "hours": 8,
                                                "topic": "行政执法文书规范化培训"}), "2024-09-10")]
    for fact in facts:
        repo.ingest(fact, AS_OF)
    doc = repo.store.get(OFFICER)
    assert doc["fact_ids"] == [f["event_id"] for f in facts] and KEY not in doc["findings_open"]
    replay(db)  # the deadline sweep's re-evaluation once the facts have settled (it may write: due_at passed)
    yield {"db": db, "facts": facts}
    client.close()


def replay(db, *plugins):
    service = offline(PersonnelService, db, host=host(*plugins), preset="seed001")
    return replay_service(service, REPLAY_AT)["officer"]


def test_a_stricter_number_then_a_replay_raises_the_finding(stored):
    db = stored["db"]
    unchanged = replay(db)
    assert (unchanged.aggregates, unchanged.facts, unchanged.written, unchanged.raised) == (1, 4, 0, 0)
    before = db.officers.find_one({"_id": OFFICER})
    version, sent = before["version"], {e["event_id"] for e in before["outbox"]}

    stricter = replay(db, StricterTraining())
    assert (stricter.aggregates, stricter.facts, stricter.written, stricter.raised, stricter.resolved) == (1, 4, 1, 1, 0)
    doc = db.officers.find_one({"_id": OFFICER})
    assert doc["version"] == version + 1
    finding = doc["findings_open"][KEY]
    assert finding["rule_id"] == "PER-TRAIN-HOURS" and finding["evidence"]["required"] == 30
    assert finding["evidence"]["hours"] == 24
    new = [(e["type"], e["payload"]["finding_key"]) for e in doc["outbox"] if e["event_id"] not in sent]
    assert new == [("finding.raised", KEY)]  # relayed by the service's outbox sweep
    assert doc["fact_ids"] == [f["event_id"] for f in stored["facts"]]  # a replay adds no fact

    again = replay(db, StricterTraining())
    assert (again.written, again.raised, again.resolved) == (0, 0, 0)

    back = replay(db)
    assert (back.written, back.raised, back.resolved) == (1, 0, 1)
    assert KEY not in db.officers.find_one({"_id": OFFICER})["findings_open"]


def test_replay_of_the_aggregates_of_given_events_only(stored):
    db = stored["db"]
    other = at(officer_registered("511322-scjg-0702"), "2024-01-05")
    service = offline(PersonnelService, db, host=host(), preset="seed001")
    service.repository(service.aggregate("officer")).ingest(other, AS_OF)

    ids = bench_replay.aggregate_ids(stored["facts"], {"personnel": service})
    assert ids == {"personnel": {"officer": {OFFICER}}}  # each aggregate reads only its own ids
    total, detail = bench_replay.replay_all({"personnel": offline(PersonnelService, db, host=host(StricterTraining()),
                                                                  preset="seed001")}, REPLAY_AT, ids)
    assert (total.aggregates, total.facts, total.raised) == (1, 4, 1)
    assert detail["personnel.officer"]["facts_per_s"] > 0
    assert db.officers.find_one({"_id": "511322-scjg-0702"})["version"] == 1  # not replayed


def test_replay_command_refuses_what_it_cannot_do(capsys):
    assert bench_replay.main(["--service", "gateway"]) == 2
    assert "不是事件溯源服务" in capsys.readouterr().err
    assert bench_replay.main(["--as-of", "2025-01-01T00:00:00"]) == 2
    assert "必须带时区" in capsys.readouterr().err
    assert bench_replay.main(["--as-of", "明天"]) == 2
    assert "不是 ISO 8601" in capsys.readouterr().err


def test_the_bench_loads_a_whole_county_year_and_replays_every_fact_of_it(zhifa_config):
    """The bench's replay phase with the direct load: every event of a simulated county year (the
    "demo" county: two departments, a whole year) goes through the services' own batch path, and the
    replay re-folds every fact that was applied — the figure is over the whole year, not a part."""
    running = ["personnel", "registry", "penalty"]
    mongo, prefix, amqp = zhifa_config["MONGO_URI"], zhifa_config["DB_PREFIX"], zhifa_config["AMQP_URI"]
    load = bench_replay.direct_loader(mongo, prefix, amqp, running, settle=None, chunk=40)
    result = bench_replay.phase(load, mongo, prefix, running, seed=11, run_id="t", others={}, scale="demo")
    loaded = result["loaded"]
    assert loaded["how"] == "direct" and loaded["complete"] and not loaded["failed"], loaded
    assert loaded["handled"] == loaded["events"] == result["county"]["events"] > 200
    assert result["whole_year"] and result["facts"] == loaded["applied"] > 0, (result["facts"], loaded, result["by_aggregate"])
    client = pymongo.MongoClient(mongo, serverSelectionTimeoutMS=3000)
    stored = sum(len(doc.get("fact_ids", ())) for service, collections in
                 (("personnel", ("officers", "agencies")), ("registry", ("items",)), ("penalty", ("cases",)))
                 for name in collections for doc in client[f"{prefix}{service}"][name].find({}, {"fact_ids": 1}))
    client.close()
    assert stored == loaded["applied"]  # every applied fact is in an aggregate, once
    assert result["aggregates"] == sum(v["aggregates"] for v in result["by_aggregate"].values())
    assert result["events_per_s"] > 0

    again = load(bench_replay.simulate_county("demo", 11, "t"))  # the same year again: nothing applied twice
    assert again["complete"] and again["handled"] == loaded["handled"]
    client = pymongo.MongoClient(mongo, serverSelectionTimeoutMS=3000)
    assert sum(len(doc.get("fact_ids", ())) for doc in client[f"{prefix}penalty"].cases.find({}, {"fact_ids": 1})) \
        == sum(1 for e in bench_replay.simulate_county("demo", 11, "t") if e["type"].startswith("case."))
    client.close()
