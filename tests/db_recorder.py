"""A pymongo command listener for tests that count what a piece of code sends to the database."""
import uuid
from contextlib import contextmanager
from typing import Iterator

import pymongo
from pymongo.database import Database


class Recorder(pymongo.monitoring.CommandListener):
    """The commands a client sends, as (command, collection) in order (`seen`)."""

    def __init__(self):
        self.seen: list[tuple[str, str]] = []

    def started(self, event):
        self.seen.append((event.command_name, str(event.command.get(event.command_name))))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


@contextmanager
def recorded_database(mongo_uri: str, service: str, recorder: Recorder | None = None,
                      **client_options) -> Iterator[Database]:
    """A database of its own for one test (dropped after), its client's commands recorded in
    `database.recorder.seen` (by `recorder`, a Recorder or a subclass that records more)."""
    recorder = recorder or Recorder()
    client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=3000, event_listeners=[recorder],
                                 **client_options)
    database = client[f"t{uuid.uuid4().hex[:8]}_{service}"]
    database.recorder = recorder
    try:
        yield database
    finally:
        from services.kernel.mongo import drop_with_companions

        drop_with_companions(client, database.name)  # (and e.g. penalty's case list)
        client.close()
