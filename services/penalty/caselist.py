"""Operators' command for the penalty case list and its counters (services/penalty/store.py).

    python -m services.penalty.caselist check            # counters against a recount, moves left pending
    python -m services.penalty.caselist check --fix      # also set wrong counters, drop stale tokens
    python -m services.penalty.caselist rebuild          # rebuild list + counters from the case documents

`check` carries out moves and batches a crashed sync left pending (their lease expired), then recounts every
partition (reads every row) and prints the counters that differ. `--fix` and `rebuild` are for a
quiet service: stop the penalty processes first (a sync running meanwhile may be counted twice or
not at all by the fix). MONGO_URI and DB_PREFIX as for the services. Prints JSON; exits 1 when a
counter was wrong (and not fixed).
"""
from __future__ import annotations

import argparse
import json
import sys

from services.kernel.mongo import operator_command, operator_database
from services.penalty import store


@operator_command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.penalty.caselist", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("check", "rebuild"))
    parser.add_argument("--fix", action="store_true", help="check: set the counters that differ from the recount")
    args = parser.parse_args(argv)
    db = operator_database("penalty")
    if args.action == "rebuild":
        counts = store.rebuild_list(db)
        print(json.dumps({"rebuilt": sum(counts.values()), "keys": len(counts)}, ensure_ascii=False))
        return 0
    report = store.repair(db, fix=args.fix)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 1 if report["wrong"] and not args.fix else 0


if __name__ == "__main__":
    sys.exit(main())
