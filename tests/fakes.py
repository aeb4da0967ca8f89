"""An in-memory stand-in for a pymongo database, for single-layer service tests (worker_factory).

Just enough for the kernel's AggregateStore on one worker: _id lookups, versioned replace,
upserts. Integration tests use the real server.
"""
from __future__ import annotations

import copy


class FakeCollection:
    """Just enough of a pymongo collection for the kernel's AggregateStore (single worker, no races)."""

    def __init__(self, database=None, name="items"):
        self.docs: dict[str, dict] = {}
        self.database = database
        self.name = name

    def find_one(self, query, projection=None):
        doc = self.docs.get(query["_id"])
        return copy.deepcopy(doc) if doc is not None else None

    def insert_one(self, doc):
        from pymongo.errors import DuplicateKeyError

        if doc["_id"] in self.docs:
            raise DuplicateKeyError("duplicate _id")
        self.docs[doc["_id"]] = copy.deepcopy(doc)

    def _matches(self, query):
        doc = self.docs.get(query["_id"])
        return doc is not None and all(doc.get(k) == v for k, v in query.items())

    def replace_one(self, query, doc, upsert=False):
        matched = self._matches(query)
        if matched or (upsert and query["_id"] not in self.docs):
            self.docs[query["_id"]] = {**copy.deepcopy(doc), "_id": query["_id"]}
        return type("Result", (), {"matched_count": int(matched)})()

    def delete_one(self, query):
        self.docs.pop(query["_id"], None)

    def update_one(self, query, update):
        matched = self._matches(query)
        if matched:
            self.docs[query["_id"]].update(copy.deepcopy(update["$set"]))
        return type("Result", (), {"matched_count": int(matched)})()


class FakeDb:
    def __init__(self):
        self.collections: dict[str, FakeCollection] = {}

    def __getitem__(self, name):
        return self.collections.setdefault(name, FakeCollection(self, name))

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]
