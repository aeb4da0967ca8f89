"""An in-memory stand-in for a pymongo database, for single-layer service tests (worker_factory).

Just enough for the kernel's AggregateStore on one worker: _id lookups, versioned replace,
upserts. Integration tests use the real server.
"""
from __future__ import annotations

import copy
import itertools
from datetime import timezone

import bson
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument


class FakeCollection:
    """Just enough of a pymongo collection for the kernel's AggregateStore (single worker, no races)."""

    def __init__(self, database=None, name="items"):
        self.docs: dict[str, dict] = {}
        self.database = database
        self.name = name
        self.full_name = f"{getattr(database, 'name', 'fake')}.{name}"  # the document cache's key
        self.codec_options = CodecOptions(tz_aware=True, tzinfo=timezone.utc)

    def find_one(self, query, projection=None):
        doc = self.docs.get(query["_id"])
        return copy.deepcopy(doc) if doc is not None else None

    def insert_one(self, doc):
        from pymongo.errors import DuplicateKeyError

        if doc["_id"] in self.docs:
            raise DuplicateKeyError("duplicate _id")
        self.docs[doc["_id"]] = self._stored(doc)

    def _stored(self, doc):
        """What the database keeps of a written document: a copy (encoded bytes decoded, as a server would)."""
        if isinstance(doc, RawBSONDocument):  # (the kernel writes aggregates encoded once: packing.Encoded)
            return bson.decode(doc.raw, codec_options=self.codec_options)
        return copy.deepcopy(doc)

    def _matches(self, query):
        doc = self.docs.get(query["_id"])
        return doc is not None and _all_hold(doc, query)

    def find_one_and_update(self, query, update, upsert=False, return_document=None):
        """(for the findings index's lease) update one matching document and return it as it is after."""
        from pymongo.errors import DuplicateKeyError

        if not self._matches(query):
            if not upsert:
                return None
            if query["_id"] in self.docs:  # exists but does not match: the upsert's insert collides
                raise DuplicateKeyError("duplicate _id")
        self.update_one(query, update, upsert=upsert)
        return copy.deepcopy(self.docs[query["_id"]])

    def replace_one(self, query, doc, upsert=False):
        matched = self._matches(query)
        if matched or (upsert and query["_id"] not in self.docs):
            self.docs[query["_id"]] = {**self._stored(doc), "_id": query["_id"]}
        return type("Result", (), {"matched_count": int(matched)})()

    def delete_one(self, query):
        if self._matches(query):
            self.docs.pop(query["_id"], None)

    def update_one(self, query, update, upsert=False):
        matched = self._matches(query)
        inserted = False
        if not matched and upsert and query["_id"] not in self.docs:
            self.docs[query["_id"]] = {"_id": query["_id"]}
            matched = inserted = True
        if matched:
            doc = self.docs[query["_id"]]
            doc.update(copy.deepcopy(update.get("$set", {})))
            if inserted:
                doc.update(copy.deepcopy(update.get("$setOnInsert", {})))
            for k, v in update.get("$push", {}).items():
                doc.setdefault(k, []).append(copy.deepcopy(v))
            for k, v in update.get("$pull", {}).items():
                doc[k] = [x for x in doc.get(k) or [] if x != v]
            for k, v in update.get("$max", {}).items():
                doc[k] = v if doc.get(k) is None else max(doc[k], v)
            for k, v in update.get("$inc", {}).items():
                doc[k] = doc.get(k, 0) + v
        return type("Result", (), {"matched_count": int(matched), "modified_count": int(matched)})()

    def find(self, query=None, projection=None):
        return _Cursor([copy.deepcopy(d) for d in self.docs.values()])

    def bulk_write(self, ops, ordered=True):
        """(the kernel's deferred side writes, services/kernel/sidewrites.py) each operation in order"""
        for op in ops:
            kind = type(op).__name__
            if kind == "InsertOne":
                self.insert_one(op._doc)
            elif kind == "DeleteOne":
                self.delete_one(op._filter)
            elif kind == "ReplaceOne":
                self.replace_one(op._filter, op._doc, upsert=op._upsert)
            elif kind == "UpdateOne":
                self.update_one(op._filter, op._doc, upsert=op._upsert)
            else:  # (the kernel defers only these four kinds; a new kind needs its fake here)
                raise TypeError(f"FakeCollection.bulk_write takes InsertOne, DeleteOne, ReplaceOne and UpdateOne, not {kind}")


class _Cursor(list):
    def limit(self, n):
        return _Cursor(self[:n]) if n else self

    def skip(self, n):
        return _Cursor(self[n:])


def _get(doc, dotted: str):
    for part in dotted.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def _all_hold(doc, query) -> bool:
    return all(any(_all_hold(doc, q) for q in v) if k == "$or" else _holds(_get(doc, k), v) for k, v in query.items())


def _holds(value, condition) -> bool:
    if isinstance(condition, dict) and "$lte" in condition:
        return value is not None and value <= condition["$lte"]
    if isinstance(condition, dict) and "$lt" in condition:
        return value is not None and value < condition["$lt"]
    if isinstance(condition, dict) and "$ne" in condition:
        return condition["$ne"] not in value if isinstance(value, list) else value != condition["$ne"]
    return value == condition


class FakeDb:
    _made = itertools.count()

    def __init__(self):
        self.collections: dict[str, FakeCollection] = {}
        self.name = f"fake{next(FakeDb._made)}"

    def __getitem__(self, name):
        return self.collections.setdefault(name, FakeCollection(self, name))

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]
