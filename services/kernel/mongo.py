"""MongoDB access: one client per container, one database per service, indexes at start.

FerretDB v1 has no transactions, so every state change is a single-document write guarded by a
`version` field (optimistic concurrency).
"""
from __future__ import annotations

import functools
import logging
import os
import sys
from typing import Any, Callable, Iterable, NamedTuple

import pymongo
from pymongo import monitoring
from nameko.extensions import DependencyProvider
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from services.kernel import config

log = logging.getLogger("zhifa.mongo")


def collection_label(command_name: str, command) -> str:
    """The bounded collection label of a command: the collection it names, a per-key collection
    (`case_list.<dept>.<stage>.<0|1>`) folded to its prefix (`case_list.*`), "-" for none."""
    target = command.get(command_name) if command_name != "getMore" else command.get("collection")
    if not isinstance(target, str) or not target:
        return "-"
    dot = target.find(".")
    return target if dot < 0 else target[:dot] + ".*"


_STATEMENTS = {"insert": "documents", "update": "updates", "delete": "deletes"}  # a write command's operations


class CommandCounter(monitoring.CommandListener):
    """Counts the database commands of one service's client, the operations they carry and the time
    spent on them (zhifa_db_commands_total / zhifa_db_ops_total / zhifa_db_command_seconds_total by
    collection and command).

    Runs on every command, so it keeps the label children it has made and remembers only the
    collection of each command in flight (by request id) between its start and its end."""

    def __init__(self, service: str):
        from services.kernel import metrics

        self.service = service
        self._metrics = metrics
        self._children: dict[tuple[str, str], tuple] = {}
        self._in_flight: dict[int, tuple] = {}

    def _child(self, collection: str, command: str) -> tuple:
        key = (collection, command)
        child = self._children.get(key)
        if child is None:
            m = self._metrics
            labels = (self.service, m.bounded("db_collection", collection), m.bounded("db_command", command))
            child = self._children[key] = (m.DB_COMMANDS.labels(*labels), m.DB_COMMAND_SECONDS.labels(*labels),
                                           m.DB_OPS.labels(*labels))
        return child

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name, command = event.command_name, event.command
        child = self._child(collection_label(name, command), name)
        child[0].inc()
        statements = _STATEMENTS.get(name)
        child[2].inc(len(command.get(statements) or ()) if statements else 1)
        self._in_flight[event.request_id] = child

    def _ended(self, event) -> None:
        child = self._in_flight.pop(event.request_id, None)
        if child is not None:
            child[1].inc(event.duration_micros / 1e6)

    succeeded = _ended
    failed = _ended


class InvalidSetting(Exception):
    """A setting an operators' command reads is not what it must be (`operator_database`)."""


def operator_database(service: str) -> Database:
    """`service`'s database for an operators' command run from a checkout (services.penalty.caselist,
    services.coordination.counters, services.kernel.findings_index): MONGO_URI, DB_PREFIX and MONGO_TIMEOUT_MS
    from the environment, as the services read them."""
    from nameko import config as nameko_config

    from services.kernel.config import load_config

    conf = load_config(None, dict(os.environ))
    try:
        with nameko_config.patch({"MONGO_TIMEOUT_MS": conf["MONGO_TIMEOUT_MS"]}, clear=False):
            timeout = config.checked("MONGO_TIMEOUT_MS")  # (read as the services read it)
    except ValueError as exc:
        raise InvalidSetting(str(exc)) from exc
    return make_client(conf["MONGO_URI"], timeout)[f"{conf['DB_PREFIX']}{service}"]


def operator_command(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """An operators' command's `main`: a database it cannot reach, or that refuses it, and a setting that does not
    parse end it with exit code 2 and one line saying why, instead of a traceback (exit code 1 says what the command
    found)."""
    @functools.wraps(main)
    def run(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except pymongo.errors.PyMongoError as exc:
            reason = f"数据库不可用或拒绝了操作（MONGO_URI、DB_PREFIX 与服务相同）：{str(exc)[:300]}"
        except InvalidSetting as exc:
            reason = f"设置无效：{exc}"
        print(f"zhifa: {reason}", file=sys.stderr)
        return 2

    return run


def make_client(uri: str | None = None, timeout_ms: int | None = None,
                service: str | None = None) -> pymongo.MongoClient:
    """A client with the suite's timeouts; with `service`, its commands are counted for /metrics."""
    timeout_ms = timeout_ms or config.checked("MONGO_TIMEOUT_MS")
    return pymongo.MongoClient(
        uri or config.get("MONGO_URI"),
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms * 4,
        tz_aware=True,
        appname="zhifa",
        event_listeners=[CommandCounter(service)] if service else [],
    )


class CollectionsOnce(Database):
    """A Database that makes each of its Collection objects once. pymongo makes a new one on every
    `db.name` / `db[name]` (~3.5 us: the handlers name their collections several times per fact,
    ~4% of penalty's CPU under load, py-spy); a Collection holds no state of its own beyond its
    options, so one per name serves every caller. Bounded: past MAX_KEPT names (per-key collections
    of a tool's scratch run) the ones made are forgotten and made again."""

    MAX_KEPT = 2048

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.__kept: dict[str, Collection] = {}

    def __getitem__(self, name: str) -> Collection:
        col = self.__kept.get(name)
        if col is None:
            if len(self.__kept) >= self.MAX_KEPT:
                self.__kept.clear()
            col = self.__kept[name] = super().__getitem__(name)
        return col

    def __getattr__(self, name: str) -> Collection:
        if name.startswith("_"):  # (as pymongo's own: private names are not collections)
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        return self[name]


def database(client: pymongo.MongoClient, name: str) -> Database:
    """`client[name]`, each collection object made once (`CollectionsOnce`)."""
    return CollectionsOnce(client, name)


def companion(db: Database, suffix: str) -> Database:
    """The database `<db's name><suffix>` (`db` itself for an empty suffix) through `db`'s client, of its
    class (`CollectionsOnce` makes each collection once) and with its options; made once per `db`
    object and kept on it (not in a map: pymongo's databases of two clients of one server compare
    equal). FerretDB on SQLite has one writer per database file (patch 0016): side collections written
    in many commands at every unit's end (penalty's case list) live in one, so they no longer wait for
    the aggregates' saves of another batch worker, nor hold them up (docs/architecture.md, "FerretDB")."""
    if not suffix:
        return db
    kept = db.__dict__.get("_companions")
    if kept is None:
        kept = db.__dict__["_companions"] = {}
    out = kept.get(suffix)
    if out is None:
        out = kept[suffix] = type(db)(db.client, db.name + suffix, codec_options=db.codec_options,
                                      read_preference=db.read_preference, write_concern=db.write_concern,
                                      read_concern=db.read_concern)
    return out


def drop_with_companions(client: pymongo.MongoClient, name: str) -> None:
    """Drop the database `name` and its companions (`companion`: `<name><suffix>`), e.g. a scratch
    database of a test or a tool."""
    for other in client.list_database_names():
        if other.startswith(name):
            client.drop_database(other)


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
    """Injects the service's pymongo Database. `indexes(db)` runs once at container start, `before_close(db)`
    at its stop (after its workers finished), before the client closes."""

    def __init__(self, service: str, indexes: Callable[[Database], None] | None = None,
                 before_close: Callable[[Database], None] | None = None):
        self.service = service
        self.indexes = indexes
        self.before_close = before_close
        self.client: pymongo.MongoClient | None = None
        self.db: Database | None = None

    def setup(self):
        self.client = make_client(service=self.service)
        self.db = database(self.client, database_name(self.service))
        from services.kernel.metrics import register_dependency

        register_dependency("database", _ping_database)

    def start(self):
        if self.indexes:
            self.indexes(self.db)

    def stop(self):
        if self.client is not None:
            if self.before_close is not None and self.db is not None:
                try:
                    self.before_close(self.db)
                except Exception:  # (best effort: the client closes anyway)
                    log.warning("%s: work left at stop not done", self.service, exc_info=True)
            self.client.close()

    def kill(self):
        if self.client is not None:
            self.client.close()

    def get_dependency(self, worker_ctx):
        return self.db


DUPLICATE_KEY = 11000  # the server's error code for an `_id` (or unique key) already taken


def insert_new(col: Collection, docs: list[dict]) -> set[int]:
    """One unordered `insert_many` of `docs`: the positions whose `_id` was taken already (MongoDB and
    FerretDB go on after a duplicate key); any other write error, or a write concern error, is raised."""
    try:
        col.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors") or []
        if not errors or exc.details.get("writeConcernErrors") or any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return {int(e["index"]) for e in errors}
    return set()


ID_IN_CHUNK = 100  # keys per `_id $in` find (a bounded command and reply)


def by_id(col: Collection, ids: Iterable[Any], projection: dict | None = None) -> dict:
    """{_id: document} of the documents of `col` whose `_id` is one of `ids` (a missing one: absent),
    in one `{_id: {$in: [...]}}` find per ID_IN_CHUNK keys. FerretDB (SQLite) reads those through the
    _id index when the ids are strings or ObjectIDs (infra/ferretdb/0012), as a find_one each would.
    `projection` must keep `_id`."""
    keys = list(dict.fromkeys(ids))
    found = {}
    for start in range(0, len(keys), ID_IN_CHUNK):
        found.update((d["_id"], d) for d in col.find({"_id": {"$in": keys[start:start + ID_IN_CHUNK]}}, projection))
    return found


class ConcurrencyError(Exception):
    """Someone else saved the same document first; reload and retry."""


class Failed(NamedTuple):
    """One item of a batch whose write raised (a projection of `store_projections` in penalty and inspection):
    the worker puts its `exc_info` in that message's outcome, so the message takes the retry / dead-letter
    way alone while the others are acked."""
    exc_info: tuple
