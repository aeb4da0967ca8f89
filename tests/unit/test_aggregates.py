"""AggregateStore on its own (an in-memory collection): listeners after each save."""
from services.kernel.aggregates import AggregateStore, Change
from tests.fakes import FakeDb


def test_listeners_get_old_and_new_document_after_each_save_and_the_document_on_a_duplicate():
    calls = []
    store = AggregateStore(FakeDb()["cases"], listeners=[lambda old, new: calls.append((old, new))])

    first, _ = store.update("c1", lambda doc: Change({"n": 1}))
    assert calls == [(None, first)] and first["version"] == 1

    second, _ = store.update("c1", lambda doc: Change({"n": doc["n"] + 1}))
    assert len(calls) == 2
    old, new = calls[1]
    assert (old["n"], old["version"]) == (1, 1) and new is second and (new["n"], new["version"]) == (2, 2)

    same, _ = store.update("c1", lambda doc: None)  # e.g. a redelivered fact: nothing written
    assert calls[2] == (same, same) and same["version"] == 2


def test_no_listener_call_when_there_is_no_document_and_nothing_to_write():
    calls = []
    store = AggregateStore(FakeDb()["cases"], listeners=[lambda old, new: calls.append((old, new))])
    assert store.update("missing", lambda doc: None) == (None, [])
    assert calls == []
