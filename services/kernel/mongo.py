"""MongoDB access: one client per container, one database per service, indexes at start.

FerretDB v1 has no transactions, so every state change is a single-document write guarded by a
`version` field (optimistic concurrency).
"""
from __future__ import annotations

import logging
from typing import Callable

import pymongo
from nameko.extensions import DependencyProvider
from pymongo.database import Database

from services.kernel import config

log = logging.getLogger("zhifa.mongo")


def make_client(uri: str | None = None, timeout_ms: int | None = None) -> pymongo.MongoClient:
    timeout_ms = timeout_ms or int(config.get("MONGO_TIMEOUT_MS"))
    return pymongo.MongoClient(
        uri or config.get("MONGO_URI"),
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms * 4,
        tz_aware=True,
        appname="zhifa",
    )


def database_name(service: str) -> str:
    return f"{config.get('DB_PREFIX')}{service}"


_probe_client: pymongo.MongoClient | None = None


def _ping_database() -> None:
    """Readiness check: the database answers a ping within a second (one small client per process)."""
    global _probe_client
    if _probe_client is None:
        _probe_client = make_client(timeout_ms=1000)
    _probe_client.admin.command("ping")


class Mongo(DependencyProvider):
    """Injects the service's pymongo Database. `indexes(db)` runs once at container start."""

    def __init__(self, service: str, indexes: Callable[[Database], None] | None = None):
        self.service = service
        self.indexes = indexes
        self.client: pymongo.MongoClient | None = None
        self.db: Database | None = None

    def setup(self):
        self.client = make_client()
        self.db = self.client[database_name(self.service)]
        from services.kernel.metrics import register_dependency

        register_dependency("database", _ping_database)

    def start(self):
        if self.indexes:
            self.indexes(self.db)

    def stop(self):
        if self.client is not None:
            self.client.close()

    def kill(self):
        self.stop()

    def get_dependency(self, worker_ctx):
        return self.db


class ConcurrencyError(Exception):
    """Someone else saved the same document first; reload and retry."""
