"""What a process remembers across units of work, bounded together by one budget (PROCESS_MEMO_MB).

A `ProcessMemo` spares work whose outcome the process already knows:

- a write or a read: the (case_refs document, case) pairs it wrote, the decisions-index entry it last
  wrote for a case, the version at which it saw a case-list or findings locator in step. Forgetting
  one costs that idempotent write or read again, never exactness (every use is checked by the write's
  own condition);
- a computation: penalty's answers about one stored officer or item version (a credential verdict,
  an item's view at an instant), asked again each time a case's facts are judged. Forgetting one costs
  computing it again.

So a memo may be small; too small and the writes or the computations come back. (Not the unit of
work's look-up memo, kernel/memo.py: that one forgets at the end of each batch.)

PROCESS_MEMO_MB is the memory these memos of one process may take together (memory, not entries: an
operator sizes a process in megabytes, docs/benchmark.md "Peak RSS over a long run"). Each memo takes
its `share` of it and holds at most share × budget / `entry_bytes` entries, the least recently put
(or answered) forgotten first; `entry_bytes` is what one entry of that memo measured (key, value and the mapping's
own slot; tests/unit/test_process_memo.py fills each memo to its bound and checks the bytes with
tracemalloc). The shares of every memo add up to at most 1 (the same test). A memo of a service that
a process does not run stays empty. The document cache (AGGREGATE_CACHE_MB) and the projection cache
(PROJECTION_CACHE_ENTRIES) hold data rather than what was done with it, and keep their own settings.

The bound is read from the configuration at a memo's first write (a memo is made at import, before
nameko's config is loaded); `reset()` makes a memo read it again and forget what it holds.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Hashable, Iterable

from services.kernel import config

MB = 1024 * 1024
_memos: list["ProcessMemo"] = []


class ProcessMemo:
    """A bounded mapping, the least recently put forgotten first. `get` and `in` do not refresh an
    entry (a memo of writes is refreshed by the writes its entries stand for, `put`); `answer`, a memo
    of computations, refreshes the entry it finds."""

    def __init__(self, name: str, *, share: float, entry_bytes: int, limit: int | None = None):
        if not 0 < share <= 1 or entry_bytes <= 0:
            raise ValueError(f"memo {name}: share in (0, 1] and entry_bytes > 0")
        self.name, self.share, self.entry_bytes = name, share, entry_bytes
        self._fixed = limit  # (a test's own bound; otherwise the budget's)
        self._limit: int | None = limit
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        if limit is None:  # (the budget's: one a test makes with its own bound is not counted)
            if any(m.name == name for m in _memos):
                raise ValueError(f"memo {name} made twice: each memo of the budget is made once, at import")
            _memos.append(self)

    @property
    def limit(self) -> int:
        """How many entries this memo keeps: its share of PROCESS_MEMO_MB over its entry size."""
        if self._limit is None:
            self._limit = bound(config.checked("PROCESS_MEMO_MB"), self.share, self.entry_bytes)
        return self._limit

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, default: Any = None) -> Any:
        return self._entries.get(key, default)

    def put(self, key: Hashable, value: Any = None) -> None:
        """Remember `key` (with `value`) as the most recently written entry; forget the oldest beyond
        the bound."""
        entries = self._entries
        entries[key] = value
        entries.move_to_end(key)
        if len(entries) > self.limit:
            while len(entries) > self._limit:
                entries.popitem(last=False)

    def answer(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The value remembered for `key`, refreshed as the most recent; else `compute()`, remembered."""
        entries = self._entries
        try:
            found = entries[key]
        except KeyError:
            found = compute()
            self.put(key, found)
            return found
        entries.move_to_end(key)
        return found

    def update(self, keys: Iterable[Hashable]) -> None:
        """`put` each of `keys` with no value (a memo used as a set)."""
        for key in keys:
            self.put(key)

    def pop(self, key: Hashable, default: Any = None) -> Any:
        return self._entries.pop(key, default)

    def clear(self) -> None:
        self._entries.clear()

    def reset(self) -> None:
        """Forget every entry and read the bound again at the next write."""
        self._entries.clear()
        self._limit = self._fixed


def bound(megabytes: float, share: float, entry_bytes: int) -> int:
    """Entries that fit in `share` of `megabytes` at `entry_bytes` each (0 when the budget is 0: the
    memo keeps nothing and every write is made)."""
    return int(float(megabytes) * MB * share) // entry_bytes


def memos() -> list[ProcessMemo]:
    """Every memo of the budget made in this process (those of the modules imported)."""
    return list(_memos)
