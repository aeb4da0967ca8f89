"""Python's cyclic garbage collector, tuned for a service process (settings `GC_THRESHOLDS`, `GC_FREEZE`).

A service allocates a few hundred container objects per fact (documents, facts, findings), nearly
all freed by reference counting; the cyclic collector's default thresholds (700, 10, 10) still run a
young collection every 700 net allocations and a full one — a walk over every object the process
keeps, its caches included — every hundred of those. Measured under `make bench` (tenth session,
gc.callbacks): penalty spent 8.7% of its CPU collecting, 1.6 s of it in 21 full collections of
~77 ms each (each one a pause of every message in flight). Raising the first threshold makes all
three generations run that much less often while the garbage a cycle holds waits a little longer
(at most that many objects). `GC_FREEZE` moves what startup made (modules, compiled contracts,
plugins: never garbage) out of the collector's view, so a full collection walks only what the
service made since.
"""
from __future__ import annotations

import gc
from typing import Any, Sequence

_frozen = False


def tune(thresholds: Sequence[Any] | None, freeze: bool = True) -> tuple[int, ...]:
    """Set the collector's thresholds (None or empty: left as they are) and, the first time in this
    process with `freeze`, freeze every object alive now. The thresholds in force."""
    global _frozen
    if thresholds:
        try:
            values = [int(v) for v in thresholds][:3]
        except (TypeError, ValueError):
            values = []
        if not values or any(v < 1 for v in values):
            raise ValueError(f"GC_THRESHOLDS must be one to three positive integers, got {thresholds!r}")
        gc.set_threshold(*values)
    if freeze and not _frozen:
        gc.collect()  # (what startup left as garbage goes first, rather than frozen with the rest)
        gc.freeze()
        _frozen = True
    return gc.get_threshold()
