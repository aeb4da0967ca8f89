"""Look-ups remembered for one unit of work: a batch of facts, or one replay run.

A service's rules read projections for every fact they judge (penalty: the officers and items a case
refers to, one `_id` find each). Within one batch the same officer or item is read again and again;
in a replay nothing changes them at all. `Memo` keeps what was read for as long as the unit of work
lasts and no longer — it is not a cache across batches: a projection may change between two batches
(an `officer.changed` handled by another worker), and the next batch must read it afresh.

The kernel opens one per batch worker (`EventSourcedService.memoized()`, services/kernel/base.py) and
one for a whole replay run (services/kernel/replay.py); an adapter gets the service's `memo` (None
outside such a unit: then it reads the database every time) and asks it with `many`/`one`.
Only read-only look-ups belong here: never what the unit of work itself writes (penalty's decisions
index, written by `after_save` of the same batch).
"""
from __future__ import annotations

from typing import Any, Callable, Hashable, Iterable

_ABSENT = object()


class Memo:
    """Remembered look-ups by kind and key, found or known to be absent."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[Hashable, Any]] = {}
        self.hits = 0
        self.misses = 0

    def many(self, kind: str, keys: Iterable[Hashable], load: Callable[[list], dict]) -> dict:
        """{key: value} for the `keys` found; `load(missing keys)` -> {key: value} reads only those not
        remembered yet (a key it does not return is remembered as absent)."""
        table = self._tables.setdefault(kind, {})
        keys = list(dict.fromkeys(keys))
        missing = [k for k in keys if k not in table]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            loaded = load(missing)
            for key in missing:
                table[key] = loaded.get(key, _ABSENT)
        return {k: table[k] for k in keys if table[k] is not _ABSENT}

    def one(self, kind: str, key: Hashable, load: Callable[[Hashable], Any]) -> Any:
        """The value of `key` (None when absent); `load(key)` reads it the first time."""
        table = self._tables.setdefault(kind, {})
        if key in table:
            self.hits += 1
        else:
            self.misses += 1
            found = load(key)
            table[key] = _ABSENT if found is None else found
        value = table[key]
        return None if value is _ABSENT else value


def remembered(memo: Memo | None, kind: str, keys: Iterable[Hashable], load: Callable[[list], dict]) -> dict:
    """`memo.many(...)`, or `load(keys)` straight from the database when there is no unit of work."""
    if memo is None:
        return load(list(dict.fromkeys(keys)))
    return memo.many(kind, keys, load)
