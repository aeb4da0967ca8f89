"""The reverse index's layout (services/penalty/store.py: buckets, the remembered writes)."""
import pytest

from services.penalty import store


@pytest.fixture(autouse=True)
def _refs_beside(monkeypatch):
    """The stand-in database below holds the reverse index itself (the service's is `store.lists(db)`)."""
    monkeypatch.setattr(store, "lists", lambda db: db)


def test_a_case_goes_to_one_stable_bucket_of_its_officer_or_item_and_a_party_has_one_document():
    assert store.ref_bucket("party_id", "P1", "C1") == "party_id:P1" == store.ref_documents("party_id", "P1")[0]
    assert store.ref_documents("party_id", "P1") == ["party_id:P1"]
    bucket = store.ref_bucket("officer_ids", "O1", "C1")
    assert bucket == store.ref_bucket("officer_ids", "O1", "C1")  # (a digest, not Python's salted hash)
    assert bucket.startswith("officer_ids:O1#") and bucket in store.ref_documents("officer_ids", "O1")
    docs = store.ref_documents("item_codes", "I1")
    assert docs[0] == "item_codes:I1" and len(docs) == 1 + store.REF_BUCKETS["item_codes"]
    spread = {store.ref_bucket("item_codes", "I1", f"C{i}") for i in range(1000)}
    assert len(spread) == store.REF_BUCKETS["item_codes"]  # (every bucket used)


def test_targets_are_one_per_reference():
    snapshot = {"officer_ids": ["O1", "O2", None], "item_codes": ["I1"], "party_id": "P1"}
    targets = store.ref_targets(snapshot, "C9")
    assert targets == [store.ref_bucket("officer_ids", "O1", "C9"), store.ref_bucket("officer_ids", "O2", "C9"),
                       store.ref_bucket("item_codes", "I1", "C9"), "party_id:P1"]
    assert store.ref_targets({"party_id": ""}, "C9") == []


def test_known_refs_forget_the_oldest_past_their_limit():
    known = store.known_refs(limit=3)
    known.update([("a", "C1"), ("b", "C1"), ("c", "C1")])
    known.update([("a", "C1")])  # written again: the most recent now
    known.update([("d", "C1")])
    assert ("b", "C1") not in known and len(known) == 3
    assert all(pair in known for pair in [("a", "C1"), ("c", "C1"), ("d", "C1")])


class _Refs:
    """A stand-in for the `case_refs` collection: the writes sent to it (this test is of the memo)."""

    def __init__(self):
        self.sent = []

    def bulk_write(self, ops, ordered=True):
        self.sent += [op._filter["_id"] for op in ops]


class _Db:
    def __init__(self, name: str = "zhifa_penalty"):
        self.name = name
        self.case_refs = _Refs()


def test_a_case_in_progress_keeps_its_pairs_while_newer_cases_come_and_go():
    """Each save writes the case's known pairs into the memo again, so the pairs forgotten are those of
    cases no longer saved: a case saved between other cases' saves is not written again."""
    db, known = _Db(), store.known_refs(limit=6)
    busy = {"officer_ids": ["O1"], "party_id": "P1"}  # two pairs
    store.index_refs(db, "C1", busy, known)
    assert len(db.case_refs.sent) == 2
    for n in range(2, 6):  # four other cases of two pairs each pass through, C1 saved between them
        store.index_refs(db, f"C{n}", {"officer_ids": [f"O{n}"], "party_id": f"P{n}"}, known)
        store.index_refs(db, "C1", busy, known)
    assert db.case_refs.sent.count(store.ref_bucket("officer_ids", "O1", "C1")) == 1  # never again
    assert (db.name, store.ref_bucket("officer_ids", "O2", "C2"), "C2") not in known  # the oldest other case's: forgotten
    store.index_refs(db, "C2", {"officer_ids": ["O2"], "party_id": "P2"}, known)
    assert db.case_refs.sent[-2:] == [store.ref_bucket("officer_ids", "O2", "C2"), "party_id:P2"]  # written again


def test_what_one_database_was_given_is_still_written_to_another():
    """The memo is the process's: a process serving two databases (tests, the bench's prefixed ones) writes
    each its own references, though the same case and officer were written to the other already."""
    known = store.known_refs(limit=100)
    first, second = _Db("zhifa_a_penalty"), _Db("zhifa_b_penalty")
    snapshot = {"officer_ids": ["O1"], "party_id": "P1"}
    store.index_refs(first, "C1", snapshot, known)
    store.index_refs(second, "C1", snapshot, known)
    store.index_refs(first, "C1", snapshot, known)  # (known there: not again)
    expected = [store.ref_bucket("officer_ids", "O1", "C1"), "party_id:P1"]
    assert first.case_refs.sent == expected and second.case_refs.sent == expected
