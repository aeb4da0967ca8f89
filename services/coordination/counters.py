"""Operators' command for the findings inbox's console counters (监督发现 计数; services/coordination/store.py).

    python -m services.coordination.counters check               # counters against a recount
    python -m services.coordination.counters check --fix         # also set those that stay wrong

`check` first counts the entries a stopped process saved but never counted (as the service's timer does),
then recounts where every entry is counted (`inbox_counted`) and prints the counters that differ. `--fix`
recounts again after `--settle` seconds (default 5) and sets each counter that read the same both times
to its recount, guarded by the value it read — safe beside running coordination processes: a count moving
meanwhile is left to the next check (or to the service's own timer, which does the same every two
minutes). MONGO_URI and DB_PREFIX as for the services. Prints JSON; exits 1 when a counter differs and
was not set.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from services.coordination import store
from services.coordination.domain import inbox as ib
from services.kernel.mongo import operator_command, operator_database


@operator_command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.coordination.counters",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("check",))
    parser.add_argument("--fix", action="store_true", help="set the counters that differ from the recount twice")
    parser.add_argument("--settle", type=float, default=5.0, metavar="SECONDS",
                        help="--fix: the time between the two recounts (default 5)")
    args = parser.parse_args(argv)
    if not 0 <= args.settle <= 3600:
        parser.error("--settle: a number of seconds from 0 to 3600")
    db = operator_database("coordination")
    uncounted = store.repair_counts(db, ib.counter_key)
    seen, fixed = store.reconcile_counters(db, None)
    if args.fix and _wrong(seen):
        time.sleep(args.settle)
        seen, fixed = store.reconcile_counters(db, seen)
    wrong = _wrong(seen)
    print(json.dumps({"uncounted_entries_counted": uncounted, "wrong": wrong, "set": fixed},
                     ensure_ascii=False, indent=2))
    return 1 if wrong else 0


def _wrong(seen: dict) -> dict:
    return {cid: {"counter": n or 0, "recount": truth} for cid, (truth, n) in sorted(seen.items())
            if truth != (n or 0)}


if __name__ == "__main__":
    sys.exit(main())
