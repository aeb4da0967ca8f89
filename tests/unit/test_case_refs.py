"""The reverse index's layout (services/penalty/store.py: buckets, the remembered writes)."""
from services.penalty import store


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
    known = store.KnownRefs(limit=3)
    known.update([("a", "C1"), ("b", "C1"), ("c", "C1")])
    known.update([("a", "C1")])  # written again: the most recent now
    known.update([("d", "C1")])
    assert ("b", "C1") not in known and len(known) == 3
    assert all(pair in known for pair in [("a", "C1"), ("c", "C1"), ("d", "C1")])
