"""The per-unit-of-work memo (services/kernel/memo.py) and the service's `memoized()` scope."""
from services.kernel.base import EventSourcedService
from services.kernel.memo import Memo, remembered


def loader(store, calls):
    def load(keys):
        calls.append(list(keys))
        return {k: store[k] for k in keys if k in store}
    return load


def test_many_reads_only_what_it_has_not_seen_and_remembers_absent_keys():
    calls, memo = [], Memo()
    load = loader({"a": 1, "b": 2}, calls)
    assert memo.many("officers", ["a", "x"], load) == {"a": 1}
    assert memo.many("officers", ["b", "a", "x", "b"], load) == {"b": 2, "a": 1}
    assert calls == [["a", "x"], ["b"]]  # "x" was not found once and is not asked again
    assert memo.many("items", ["a"], load) == {"a": 1}  # kinds are separate tables
    assert calls[-1] == ["a"] and (memo.hits, memo.misses) == (2, 4)


def test_one_and_remembered_without_a_memo_reads_every_time():
    calls = []
    memo = Memo()
    assert memo.one("decision", "c1", lambda k: calls.append(k)) is None
    assert memo.one("decision", "c1", lambda k: calls.append(k) or 5) is None  # absent is remembered
    assert calls == ["c1"]
    load = loader({"a": 1}, calls)
    assert remembered(None, "officers", ["a", "a"], load) == {"a": 1}
    assert remembered(None, "officers", ["a"], load) == {"a": 1}
    assert calls[1:] == [["a"], ["a"]]


class Service(EventSourcedService):
    pass


def test_memoized_is_one_scope_nested_scopes_share_it_and_it_ends():
    service = Service()
    assert service.memo is None
    with service.memoized() as outer:
        assert service.memo is outer
        with service.memoized() as inner:  # apply() inside apply_batch(), or inside a replay run
            assert inner is outer
        assert service.memo is outer
    assert service.memo is None
    with service.memoized() as fresh:  # the next batch reads afresh
        assert fresh is not outer
