"""Every message still passes FerretDB's check of what it carries (infra/ferretdb/0020).

FerretDB refuses a float NaN anywhere in a command (wire.CheckNaNs) and a document that does not
decode. Patch 0020 lets a message through without decoding it when a walk over its bytes finds it
certainly well-formed and free of NaN, and leaves everything else to the old check. These tests send
through the real server what each side of that line meets: documents of every type FerretDB takes,
nested, read back byte for byte (the walk's way); NaN at the top, deep in a document, in an array, in
a filter and in an update operator (refused, nothing stored, the connection still serves); and a
type FerretDB refuses (MinKey). They run against whichever server the suite uses; MongoDB stores NaN
and MinKey, so the refusals are FerretDB's only.
"""
import datetime
import math

import bson
import pytest
from bson import Binary, Int64, MinKey, ObjectId, Regex, Timestamp
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo.errors import PyMongoError

from tests.helpers import is_ferretdb
from tests.integration.test_ferretdb_skip import db  # noqa: F401  (fixture: a database of its own, dropped after)

RAW = CodecOptions(document_class=RawBSONDocument)


def _document(i: int) -> dict:
    return {
        "_id": f"w{i}", "s": "行政执法 " * i, "n": i, "big": Int64(2**40 + i), "x": i + 0.25, "neg": -(i + 0.5),
        "ok": i % 2 == 0, "none": None, "oid": ObjectId(f"{i:024x}"), "bin": Binary(bytes(range(i % 256))),
        "at": datetime.datetime(2026, 12, 5, 1, i % 60), "ts": Timestamp(1_700_000_000 + i, i),
        "re": Regex(f"^a{i}", "i"),
        "nested": {"a": [1, 2.5, {"b": [f"{i}", {}]}, {}], "empty": {}, "deep": {"d": {"d": {"d": i}}}},
    }


def test_documents_of_every_kind_pass_and_read_back_byte_for_byte(db):  # noqa: F811
    docs = [_document(i) for i in range(60)]
    db.w.insert_many(docs)
    raw = db.get_collection("w", codec_options=RAW)
    for d in docs:
        assert raw.find_one({"_id": d["_id"]}).raw == bson.encode(d), d["_id"]
    assert db.w.count_documents({"nested.deep.d.d.d": {"$gte": 30}}) == 30


@pytest.mark.parametrize("where", ["top", "nested", "array", "filter", "update"])
def test_nan_is_refused_and_nothing_is_stored(db, where):  # noqa: F811
    if not is_ferretdb(db):
        pytest.skip("MongoDB stores NaN: the refusal is FerretDB's")
    db.w.insert_one({"_id": "base", "x": 1.0})
    doc = {"_id": "n", "x": 1.0, "nested": {"a": {"b": 2.0}}, "arr": [1.0, 2.0]}
    with pytest.raises(PyMongoError):
        if where == "top":
            db.w.insert_one(dict(doc, x=math.nan))
        elif where == "nested":
            db.w.insert_one(dict(doc, nested={"a": {"b": math.nan}}))
        elif where == "array":
            db.w.insert_one(dict(doc, arr=[1.0, [2.0, math.nan]]))
        elif where == "filter":
            list(db.w.find({"x": math.nan}))
        else:
            db.w.update_one({"_id": "base"}, {"$set": {"x": math.nan}})
    # nothing stored, and the server (and a new command on the client) still answer
    assert list(db.w.find({}, {"_id": 1}).sort("_id", 1)) == [{"_id": "base"}]
    assert db.w.find_one({"_id": "base"}) == {"_id": "base", "x": 1.0}


def test_a_type_ferretdb_refuses_is_refused(db):  # noqa: F811
    if not is_ferretdb(db):
        pytest.skip("MongoDB stores MinKey: the refusal is FerretDB's")
    with pytest.raises(PyMongoError):
        db.w.insert_one({"_id": "m", "k": {"deep": [MinKey()]}})
    assert db.w.find_one({"_id": "m"}) is None
    db.w.insert_one({"_id": "after", "x": 2.0})
    assert db.w.find_one({"_id": "after"}) == {"_id": "after", "x": 2.0}
