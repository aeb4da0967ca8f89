"""Penalty's officer projection on the real MongoDB-wire server (services/penalty/store.py): the newest
version kept, one command per `officer.changed`, and "changed" only when what the rules read changed."""
import uuid
from datetime import datetime, timezone

import pymongo
import pytest

from services.penalty import store
from tests.db_recorder import Recorder

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def watched(servers):
    recorder = Recorder()
    client = pymongo.MongoClient(servers["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True,
                                 event_listeners=[recorder])
    database = client[f"t{uuid.uuid4().hex[:8]}_penalty"]
    yield database, recorder
    client.drop_database(database.name)
    client.close()


def officer(version: int, training_hours: int = 10, credential_end: str = "2028-12-31") -> dict:
    return {"officer_id": "51132200123", "version": version, "kind": "officer", "active": True,
            "training_hours": training_hours,
            "credentials": [{"number": "川执法123", "areas": ["market"], "valid_to": credential_end, "status": "valid"}]}


def test_an_officer_projection_is_one_command_and_changed_only_for_what_rules_read(watched):
    db, recorder = watched
    assert store.upsert_officer(db, officer(1), NOW) is True  # new: the cases referring to it fall due
    assert recorder.seen == [("findAndModify", "officers")]
    recorder.seen.clear()
    assert store.upsert_officer(db, officer(2, training_hours=40), NOW) is False  # stored, rules unaffected
    assert recorder.seen == [("findAndModify", "officers")]
    assert db.officers.find_one({"_id": "51132200123"})["payload"]["training_hours"] == 40
    assert store.upsert_officer(db, officer(3, training_hours=40, credential_end="2026-12-31"), NOW) is True
    assert store.upsert_officer(db, officer(2), NOW) is False  # older, arriving late: not stored
    stored = db.officers.find_one({"_id": "51132200123"})
    assert stored["version"] == 3 and stored["payload"]["credentials"][0]["valid_to"] == "2026-12-31"
    assert store.upsert_officer(db, officer(3, training_hours=40, credential_end="2026-12-31"), NOW) is False
