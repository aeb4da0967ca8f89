"""A sequence read the first time it is looked at (pure: the loader is the caller's).

Rules receive what they may need from the service (other decisions of a party, the handovers of a
case); most evaluations never look at it (a case without a decision, a case not penalised), so the
look-up is made only when a rule iterates, indexes or sizes the sequence, and then once.
"""
from __future__ import annotations

from typing import Callable, Sequence


class OnDemand(Sequence):
    """`load()` runs at the first use of the sequence; its rows are kept for the rest."""

    def __init__(self, load: Callable[[], Sequence]):
        self._load = load
        self._rows: tuple | None = None

    @property
    def loaded(self) -> bool:
        return self._rows is not None

    def _get(self) -> tuple:
        if self._rows is None:
            self._rows = tuple(self._load())
        return self._rows

    def __getitem__(self, index):
        return self._get()[index]

    def __len__(self) -> int:
        return len(self._get())

    def __iter__(self):
        return iter(self._get())

    def __repr__(self) -> str:
        return f"OnDemand({list(self._rows) if self.loaded else 'not read'})"
