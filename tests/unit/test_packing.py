"""services/kernel/packing.py: an aggregate's facts stored as one compressed binary field come back
exactly as the unpacked document would (the BSON round trip the database does today), for the facts
of every service the county simulator generates; old documents (plain facts) still read."""
from __future__ import annotations

import functools
import zlib
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import bson
import pytest
from bson.binary import Binary
from bson.codec_options import CodecOptions

from services.kernel import packing
from services.kernel.eventsourced import stored_fact
from services.simulator import coordination as sc
from services.simulator import handover as sh
from services.simulator import inspection as si
from services.simulator.generator import county_config, simulate

RECEIVED = datetime(2025, 6, 1, 8, 30, 15, 123000, tzinfo=timezone.utc)


def stored(doc: dict, codec: CodecOptions = packing.KERNEL_CODEC) -> dict:
    """What a read returns after a write of `doc` (the driver's BSON round trip)."""
    return bson.decode(bson.encode(doc), codec_options=codec)


def aggregate_doc(agg_id: str, facts: list[dict]) -> dict:
    return {"_id": agg_id, "version": 3, "facts": facts, "fact_ids": [f["event_id"] for f in facts],
            "snapshot": {"id": agg_id, "dept": facts[0]["dept"]}, "dept": facts[0]["dept"],
            "findings_open": {}, "findings_count": 0, "emitted": {"case_changed": "ab" * 32},
            "due_at": RECEIVED + timedelta(days=3), "evaluated_at": RECEIVED, "outbox": []}


@functools.lru_cache(maxsize=1)
def aggregates_of_every_service() -> dict[str, list[dict]]:
    """Aggregate documents built from the simulated county's facts, by the service owning them."""
    sim = simulate(county_config("small", seed=3))
    streams = {"personnel+registry+penalty": sim.events, "handover": sh.simulate_handovers(sim).events,
               "inspection": si.simulate_inspections(sim).events,
               "coordination": sc.simulate_coordination(sim).events}
    out: dict[str, list[dict]] = {}
    for name, events in streams.items():
        groups: dict[str, list[dict]] = defaultdict(list)
        for env in events:  # one aggregate per (type family, subject id): realistic sizes and mixes
            payload = env["payload"]
            subject = next((str(payload[k]) for k in sorted(payload) if k.endswith("_id")), "-")
            groups[f"{env['type'].split('.')[0]}:{subject}"].append(stored_fact(env, RECEIVED))
        out[name] = [aggregate_doc(k, v) for k, v in groups.items()]
    return out


def test_simulated_facts_of_every_service_round_trip_exactly():
    services = aggregates_of_every_service()
    assert set(services) == {"personnel+registry+penalty", "handover", "inspection", "coordination"}
    chinese = 0
    for name, docs in services.items():
        assert len(docs) > 5, name
        for doc in docs:
            packed = packing.pack(doc)
            assert "facts" not in packed and "emitted" not in packed and isinstance(packed[packing.PACKED], Binary)
            assert packed["fact_ids"] == doc["fact_ids"] and packed["snapshot"] == doc["snapshot"]
            assert packing.unpack(stored(packed)) == stored(doc), (name, doc["_id"])
            chinese += any("\u4e00" <= ch <= "\u9fff" for ch in str(doc["facts"]))
    assert chinese > 100  # the facts carry Chinese text (names, reasons, case summaries)


def test_packed_field_is_smaller_than_the_facts():
    docs = sorted(aggregates_of_every_service()["personnel+registry+penalty"], key=lambda d: -len(d["facts"]))[:20]
    for doc in docs:
        raw = len(bson.encode({k: doc[k] for k in packing.PACKED_FIELDS}))
        assert len(packing.pack(doc)[packing.PACKED]) < raw / 2, doc["_id"]


def test_datetimes_types_and_time_zones_as_the_database_keeps_them():
    cst = timezone(timedelta(hours=8))
    facts = [{"event_id": "e1", "type": "t", "dept": "511322-scjg", "occurred_at": datetime(2025, 3, 1, 9, 0, 0, 987654, tzinfo=cst),
              "payload": {"n": 3, "big": 2**62, "x": 1.5, "ok": True, "none": None, "list": [1, "二", {"三": [4.0]}],
                          "naive": datetime(2025, 3, 1, 9, 0), "text": "当事人签字确认\u0000末尾", "empty": {}, "bytes": b"\x00\xff"}}]
    doc = aggregate_doc("c1", facts)
    for codec in (packing.KERNEL_CODEC, CodecOptions(), CodecOptions(tz_aware=True, tzinfo=cst)):
        back = packing.unpack(stored(packing.pack(doc), codec), codec)
        assert back == stored(doc, codec)
        assert type(back["facts"][0]["payload"]["n"]) is int and type(back["facts"][0]["payload"]["x"]) is float
    back = packing.unpack(stored(packing.pack(doc)))
    assert back["facts"][0]["occurred_at"] == datetime(2025, 3, 1, 1, 0, 0, 987000, tzinfo=timezone.utc)  # ms, UTC
    assert back["facts"][0]["payload"]["text"] == "当事人签字确认\u0000末尾"


def test_old_documents_and_projections_read_unchanged():
    doc = stored(aggregate_doc("old", [stored_fact({"event_id": "e", "type": "case.filed", "occurred_at": "2025-01-02T09:00:00+08:00",
                                                     "dept": "d", "source": "s", "payload": {"case_id": "old"}})]))
    assert packing.unpack(doc) == doc and packing.unpack(doc) is not doc
    assert packing.unpack({"_id": "x", "snapshot": {}}) == {"_id": "x", "snapshot": {}}
    assert packing.unpack(None) is None
    repacked = packing.pack(doc)  # an old document is packed on its next write
    assert packing.unpack(stored(repacked)) == doc


def test_pack_without_packed_fields_and_the_projections():
    plain = {"_id": "m", "version": 1, "snapshot": {"a": 1}}
    assert packing.pack(plain) == plain and packing.pack(plain) is not plain
    assert packing.FACTS == {"facts": 1, packing.PACKED: 1}
    assert set(packing.WITHOUT_FACTS) == {*packing.PACKED_FIELDS, packing.PACKED}
    assert set(packing.WITHOUT_FACTS.values()) == {0}


def test_pack_refuses_a_document_mixing_both_forms():
    doc = packing.pack(aggregate_doc("c", [{"event_id": "e", "dept": "d"}]))
    with pytest.raises(packing.PackingError):
        packing.pack({**doc, "facts": []})


def test_damaged_or_unknown_packed_data_is_a_clear_error():
    good = packing.pack(aggregate_doc("c", [{"event_id": "e", "dept": "d"}]))
    with pytest.raises(packing.PackingError, match="unknown packed format"):
        packing.unpack({**good, packing.PACKED: Binary(b"\x09" + bytes(good[packing.PACKED])[1:])})
    with pytest.raises(packing.PackingError, match="damaged"):
        packing.unpack({**good, packing.PACKED: Binary(b"\x01not zlib")})
    with pytest.raises(packing.PackingError, match="damaged"):
        packing.unpack({**good, packing.PACKED: Binary(b"\x01" + zlib.compress(b"\x05\x00\x00\x00\x01"))})
    with pytest.raises(packing.PackingError, match="damaged"):
        packing.unpack({**good, packing.PACKED: Binary(b"\x02not zstd")})
    with pytest.raises(packing.PackingError, match="damaged"):
        packing.unpack({**good, packing.PACKED: Binary(bytes(good[packing.PACKED])[:-4])})   # cut short


def test_packed_fields_are_written_with_zstandard_and_zlib_ones_still_read():
    """Since 2026-12-06 the packed field is Zstandard (format byte 2); a document packed with zlib
    (format byte 1) before reads the same, and its next save writes it with Zstandard."""
    for docs in aggregates_of_every_service().values():
        for doc in docs[:20]:
            packed = packing.pack(doc)
            assert bytes(packed[packing.PACKED])[:1] == packing.FORMAT_BSON_ZSTD
            inner = bson.encode({k: doc[k] for k in packing.PACKED_FIELDS if k in doc})
            old = {**packed, packing.PACKED: Binary(packing.FORMAT_BSON_ZLIB + zlib.compress(inner, 1))}
            assert packing.unpack(stored(old)) == packing.unpack(stored(packed)) == stored(doc)
            assert bytes(packing.pack(packing.unpack(stored(old)))[packing.PACKED])[:1] == packing.FORMAT_BSON_ZSTD


def test_packing_is_safe_from_several_threads():
    """(The Zstandard contexts are per operating-system thread: one is not for two threads at once.)"""
    from eventlet.patcher import original

    threading = original("threading")  # (real threads: the suite's conftest patches the module)

    docs = aggregates_of_every_service()["personnel+registry+penalty"][:30]
    wrong: list[str] = []

    def work():
        for _ in range(20):
            for doc in docs:
                if packing.unpack(stored(packing.pack(doc))) != stored(doc):
                    wrong.append(doc["_id"])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert wrong == []


def test_unpack_from_uses_the_collection_codec():
    class Col:
        codec_options = CodecOptions()  # naive datetimes

    doc = aggregate_doc("c", [{"event_id": "e", "dept": "d", "at": RECEIVED}])
    back = packing.unpack_from(Col(), stored(packing.pack(doc), Col.codec_options))
    assert back["facts"][0]["at"].tzinfo is None and back == stored(doc, Col.codec_options)


# ---- layouts: the snapshot packed too, lifted paths kept readable (penalty cases, personnel officers) ----

def test_a_layout_packs_the_snapshot_and_keeps_lifted_paths_readable():
    doc = aggregate_doc("o1", [{"event_id": "e1", "dept": "511322-scjg", "payload": {"name": "周岩"}}])
    doc["snapshot"] = {"officer_id": "o1", "name": "周岩", "status": "active", "credential_numbers": ["川1"],
                       "credentials": [{"number": "川1", "valid_to": "2029-01-18"}], "at": RECEIVED}
    layout = packing.Layout(packing.PACKED_FIELDS + ("snapshot",), ("snapshot.status", "snapshot.name",
                                                                    "snapshot.credential_numbers", "snapshot.gone"))
    stored_doc = stored(layout.pack(doc))
    assert stored_doc["snapshot"] == {"status": "active", "name": "周岩", "credential_numbers": ["川1"]}
    assert set(stored_doc) == set(doc) - {"facts", "emitted"} | {packing.PACKED}
    assert packing.unpack(stored_doc) == stored(doc)  # the whole snapshot back over the lifted copy
    assert list(packing.unpack(stored_doc)["snapshot"]) == list(doc["snapshot"])  # in its order
    assert packing.unpack(stored_doc)["fact_ids"] == ["e1"]  # not packed by this layout


def test_every_field_a_layout_packs_comes_back_for_every_service():
    layout = packing.Layout(packing.PACKED_FIELDS + ("snapshot", "fact_ids"))
    for name, docs in aggregates_of_every_service().items():
        for doc in docs[:200]:
            packed = layout.pack(doc)
            assert not {"facts", "emitted", "snapshot", "fact_ids"} & set(packed), name
            assert packing.unpack(stored(packed)) == stored(doc), (name, doc["_id"])


def test_the_default_layout_is_the_facts_only_and_old_documents_read():
    doc = aggregate_doc("c", [{"event_id": "e", "dept": "d"}])
    assert packing.DEFAULT_LAYOUT.pack(doc) == packing.pack(doc)
    assert "snapshot" in packing.DEFAULT_LAYOUT.pack(doc)
    layout = packing.Layout(packing.PACKED_FIELDS + ("snapshot",))
    old = stored(packing.pack(doc))  # stored before the snapshot was packed
    assert packing.unpack(old) == stored(doc)
    assert "snapshot" not in layout.pack(packing.unpack(old))  # the next save packs it


def test_a_layout_refuses_to_pack_what_the_kernel_reads_in_the_database():
    for field in ("version", "outbox", "findings_open", "due_at", "dept", "_id"):
        with pytest.raises(ValueError, match="cannot be packed"):
            packing.Layout(packing.PACKED_FIELDS + (field,))
    with pytest.raises(ValueError, match="inside a packed field"):
        packing.Layout(packing.PACKED_FIELDS, ("snapshot.status",))
    with pytest.raises(ValueError, match="inside a packed field"):
        packing.Layout(packing.PACKED_FIELDS + ("snapshot",), ("snapshot",))


def test_reading_projects_a_field_in_either_form():
    assert packing.reading("snapshot", "dept") == {"snapshot": 1, "dept": 1, packing.PACKED: 1}


def test_holds_fact_finds_an_event_id_in_plain_or_packed_fact_ids_only():
    facts = [{"event_id": "e-1", "dept": "d", "payload": {"ref": "e-9"}}, {"event_id": "e-2", "dept": "d"}]
    doc = aggregate_doc("c", facts)
    packed = stored(packing.Layout(packing.PACKED_FIELDS + ("fact_ids",)).pack(doc))
    for form in (stored(doc), packed, stored(packing.pack(doc))):
        assert packing.holds_fact(form, "e-1") and packing.holds_fact(form, "e-2")
        assert not packing.holds_fact(form, "e-9")  # in a payload, not a fact of this aggregate
        assert not packing.holds_fact(form, "e-3")
    assert not packing.holds_fact(None, "e-1")
    with pytest.raises(packing.PackingError):
        packing.holds_fact({**packed, packing.PACKED: Binary(b"\x01broken")}, "e-1")


def test_the_penalty_and_personnel_declarations_pack_their_snapshots():
    from services.penalty.manifest import MANIFEST as penalty
    from services.personnel.manifest import MANIFEST as personnel

    case = penalty.aggregates[0].layout
    assert "snapshot" in case.packed and case.lifted == ()
    officer = next(a for a in personnel.aggregates if a.name == "officer").layout
    assert "snapshot" in officer.packed and "snapshot.credential_numbers" in officer.lifted
    agency = next(a for a in personnel.aggregates if a.name == "agency").layout
    assert agency == packing.DEFAULT_LAYOUT
