"""A pymongo command listener for tests that count what a piece of code sends to the database."""
import pymongo


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
