"""Many cases for the API's latency target (issue 14: p95 ≤ 150 ms for the console's overview and list
queries with 1,000,000 cases): fill a penalty database, then time the queries through the API.

    python -m services.simulator.bigcases --templates zhifa_benchXXXX_penalty --count 1000000

Cases are written directly in the penalty store's shape: real case documents (written by the
penalty service, e.g. a `make bench` run with --keep-data) are the templates; each copy gets a
new `_id`, case number and fact ids, and its department from the templates' departments, so
filters by department and stage select realistic shares. Copies are closed history: no due date.
Writes go in `insert_many` batches of at most 50 (FerretDB v1 once hung on a bulk write of 100).

Two parts are filled:
- the aggregate documents (`cases`, 11-15 KB each, what `GET /cases/{id}` and the findings read):
  until `--aggregates` of them exist (default `--count`; resumable);
- the case list the list queries read (services/penalty/store.py: one partition per department x
  stage x overdue, the locators and the counters) for all `--count` cases, built from the same
  copies (each row equals what the penalty service would write for that copy); rebuilt from
  scratch when its count differs.
- the open-findings index (services/kernel/findings_index.py) of the aggregate documents stored,
  as the penalty service's store listener would have written it (rebuilt when its total differs).
The JSON and the printout state both numbers: the list figures hold for `--count` cases, the
aggregate collection may hold fewer when filling 13 KB documents did not fit in the time.

Before the service starts, what it would do at start on this database is done here and timed
(`cases_copies`, where an earlier run set the documents aside, becomes `cases` again; penalty's
`ensure_indexes`, which creates no secondary index on the case documents any more).

Then the penalty and api processes are started against that database prefix (nothing else), a
machine account (supervisor) is created, and each query is called `--repeat` times; p50 / p95 /
max are printed with the conditions (cores, load before → after) and the CPU milliseconds per call
of the penalty, api and FerretDB processes (the work per call, comparable on a busy machine), and
written to JSON (default .run/bench/api-cases.json); `--only a,b` times only those queries. The penalty process runs with its kernel sweeps that scan every
aggregate document (outbox sweep, findings recount) set to once a day (`--sweep-seconds`), stated
in the JSON: at this size each such scan alone takes minutes on FerretDB v1. Run it against a
database server of its own (e.g. the `run` profile's, not the one the tests share).
"""
from __future__ import annotations

import argparse
import copy
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import requests

from services.simulator.bench import (ROOT, Broker, git_commit, load_average, log, machine, percentiles,
                                      with_vhost)
from services.simulator.ports import free_port
from services.simulator.publish import DEFAULT_AMQP_URI
from services.kernel.aggregates import AggregateStore
from services.kernel.packing import unpack_from
from services.penalty import store as penalty_store
from services.penalty.manifest import MANIFEST as PENALTY
from services.simulator.report import write_json
from services.simulator.stopping import exit_on_sigterm

BATCH_MAX = 50  # FerretDB v1 hung on a bulk write of 100
CASES = PENALTY.aggregates[0].layout  # stored as the penalty service stores its cases (kernel/packing.py)


def templates(client, db_name: str, limit: int = 1000) -> list[dict]:
    col = client[db_name].cases
    docs = [unpack_from(col, doc) for doc in col.find({}).limit(limit)]  # facts packed (kernel/packing.py)
    if not docs:
        raise SystemExit(f"bigcases: no case documents in {db_name} to copy")
    return docs


def copy_case(template: dict, n: int, tag: str, depts: list[str]) -> dict:
    doc = copy.deepcopy(template)
    doc["_id"] = f"{tag}-{n:07d}"
    dept = depts[n % len(depts)]
    doc["dept"] = dept
    snap = doc.get("snapshot") or {}
    snap["case_no"] = f"{dept}-{tag}-{n:07d}"
    if "dept" in snap:
        snap["dept"] = dept
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}/{n}/{i}")) for i, _ in enumerate(doc.get("fact_ids") or ())]
    doc["fact_ids"] = ids
    for fact, new_id in zip(doc.get("facts") or (), ids):
        fact["event_id"] = new_id
    doc["outbox"], doc["outbox_pending"] = [], False
    doc["due_at"] = None  # closed history: no copy falls due (a million re-evaluations would swamp the run)
    return doc


def copies_stored(cases, tag: str, most: int) -> int:
    """How many copies exist (written in order): a binary search by `_id`, as FerretDB v1 counts by
    reading every document (minutes at this size)."""
    lo, hi = 0, most  # copies 0..lo-1 exist; copy hi does not (or hi == most)
    while lo < hi:
        mid = (lo + hi) // 2
        if cases.find_one({"_id": f"{tag}-{mid:07d}"}, {"_id": 1}) is not None:
            lo = mid + 1
        else:
            hi = mid
    return lo


def fill(client, db_name: str, tmpl: list[dict], count: int, batch: int, tag: str) -> dict:
    """Insert copies until `db_name.cases` holds `count` cases; resumable."""
    batch = max(1, min(batch, BATCH_MAX))
    cases = client[db_name].cases
    have = copies_stored(cases, tag, count)
    depts = sorted({t.get("dept") for t in tmpl if t.get("dept")}) or ["511322-scjg"]
    started, n = time.monotonic(), have
    log(f"fill: {db_name}.cases holds {have}; writing up to {count} in batches of {batch}")
    while n < count:
        docs = [CASES.pack(copy_case(tmpl[(n + i) % len(tmpl)], n + i, tag, depts)) for i in range(min(batch, count - n))]
        cases.insert_many(docs, ordered=False)
        n += len(docs)
        if n % 20000 < batch:
            rate = (n - have) / max(1e-9, time.monotonic() - started)
            log(f"fill: {n}/{count} ({rate:.0f} cases/s)")
    seconds = time.monotonic() - started
    return {"had": have, "count": n, "written": n - have, "seconds": round(seconds, 1),
            "cases_per_s": round((n - have) / seconds, 1) if seconds > 0 and n > have else None,
            "template_count": len(tmpl), "depts": depts,
            "avg_template_bytes": round(sum(len(str(t)) for t in tmpl) / len(tmpl))}


class BatchedInserts:
    """Documents for several collections, inserted `BATCH_MAX` at a time per collection (`flush` the rest)."""

    def __init__(self, size: int = BATCH_MAX):
        self.size, self.pending = size, {}

    def add(self, col, doc: dict) -> None:
        _, docs = self.pending.setdefault(col.full_name, (col, []))
        docs.append(doc)
        if len(docs) >= self.size:
            col.insert_many(docs, ordered=False)
            docs.clear()

    def flush(self) -> None:
        for col, docs in self.pending.values():
            if docs:
                col.insert_many(docs, ordered=False)
                docs.clear()


def drop_partitions(db, prefix: str, *collections) -> None:
    """Drop the per-key collections `<prefix>.*` and the given side collections (a list or index rebuilt)."""
    for name in db.list_collection_names():
        if name.startswith(prefix + "."):
            db.drop_collection(name)
    for col in collections:
        col.drop()


def copy_row(base_rows: list[dict], n: int, tag: str, depts: list[str]) -> dict:
    """The case-list row of copy `n`: the template's row with the copy's id, department and case
    number (equal to `list_row(copy_case(...))`, without copying a 13 KB document per row)."""
    row = dict(base_rows[n % len(base_rows)])
    dept = depts[n % len(depts)]
    row.update(_id=f"{tag}-{n:07d}", case_id=f"{tag}-{n:07d}", dept=dept, case_no=f"{dept}-{tag}-{n:07d}")
    return row


def fill_list(client, db_name: str, tmpl: list[dict], count: int, tag: str) -> dict:
    """Write the case list (partitions, locators, counters) of copies 0..count-1, as the penalty
    service would have written them case by case; rebuilt when its size differs from `count`."""
    db = client[db_name]
    lists = penalty_store.lists(db)
    have = sum(int(c.get("n", 0)) for c in lists.case_counts.find({}, {"n": 1}))  # not a count: see copies_stored
    depts = sorted({t.get("dept") for t in tmpl if t.get("dept")}) or ["511322-scjg"]
    base_rows = [penalty_store.list_row({**t, "due_at": None}) for t in tmpl]
    counts: dict[str, int] = {}
    for n in range(count):
        key = penalty_store.row_key(copy_row(base_rows, n, tag, depts))
        counts[key] = counts.get(key, 0) + 1
    started = time.monotonic()
    if have != count:
        log(f"fill list: {db_name} list holds {have}; rebuilding for {count} cases")
        drop_partitions(lists, penalty_store.LIST_PREFIX, lists.case_list_at, lists.case_counts)
        out = BatchedInserts()
        for n in range(count):
            row = copy_row(base_rows, n, tag, depts)
            key = penalty_store.row_key(row)
            out.add(penalty_store.partition(db, key), row)
            out.add(lists.case_list_at, {"_id": row["_id"], "key": key, "pending": None, "lease": None,
                                      "version": int(tmpl[n % len(tmpl)].get("version") or 0)})
            if (n + 1) % 50000 == 0:
                log(f"fill list: {n + 1}/{count} ({(n + 1) / (time.monotonic() - started):.0f} cases/s)")
        out.flush()
        penalty_store.write_counts(db, counts)
    seconds = time.monotonic() - started
    return {"count": count, "rebuilt": have != count, "seconds": round(seconds, 1), "keys": len(counts),
            "counts": dict(sorted(counts.items())),
            "overdue": sum(n for k, n in counts.items() if penalty_store.key_parts(k)[2])}


def fill_findings(client, db_name: str, tmpl: list[dict], count: int, tag: str) -> dict:
    """Write the open-findings index (services/kernel/findings_index.py: partitions, locators,
    counters) of copies 0..count-1 of the aggregate documents, as the penalty service's listener
    would have written it save by save: each copy's findings are its template's (copy_case copies
    them as they are), each row under the copy's id. Rebuilt when its total differs."""
    from services.kernel import findings_index as fi

    db = client[db_name]
    index = fi.FindingsIndex(db.cases)
    per_tmpl = [fi.wanted(t) for t in tmpl]
    expected: dict[str, int] = {}
    for n in range(count):
        for part, _, _ in per_tmpl[n % len(tmpl)].values():
            expected[part] = expected.get(part, 0) + 1
    have = {c["part"]: c["n"] for c in index.counters()}
    started = time.monotonic()
    rebuilt = have != expected or not index.built()
    if rebuilt:
        log(f"fill findings: {db_name} index holds {sum(have.values())}; rebuilding for {count} aggregates")
        drop_partitions(db, index.base, index.at, index.counts)
        out = BatchedInserts()
        for n in range(count):
            want = per_tmpl[n % len(tmpl)]
            if not want:
                continue
            agg_id = f"{tag}-{n:07d}"
            for key, (part, _, f) in want.items():
                out.add(index.rows(part), {"_id": fi.row_id(agg_id, key), **f})
            rows = fi.locator_rows(want)
            out.add(index.at, {"_id": agg_id, "version": int(tmpl[n % len(tmpl)].get("version") or 0), "pending": None,
                               "lease": None, "rows": rows, "rd": fi.rows_digest(rows)})
            if (n + 1) % 50000 == 0:
                log(f"fill findings: {n + 1}/{count} ({(n + 1) / (time.monotonic() - started):.0f} aggregates/s)")
        out.flush()
        for part, n in expected.items():
            severity, dept, rule = part.split(".", 2)
            index.counts.replace_one({"_id": part}, {"n": n, "tokens": [], "severity": severity, "dept": dept,
                                                     "rule_id": rule}, upsert=True)
        index.counts.replace_one({"_id": fi.BUILT}, {"n": 0, "at": time.time()}, upsert=True)
    return {"aggregates": count, "findings": sum(expected.values()), "partitions": len(expected), "rebuilt": rebuilt,
            "seconds": round(time.monotonic() - started, 1)}


def aggregates_in_place(client, db_name: str) -> dict:
    """Make `cases` the aggregate collection again when an earlier run set its documents aside as
    `cases_copies` (the penalty service then built 9 indexes on them at start: > 10 min), and do
    what the service does at start (store.ensure_indexes) here, timed, before it starts."""
    db = client[db_name]
    names = set(db.list_collection_names())
    moved = False
    if "cases_copies" in names and db.cases.find_one({}, {"_id": 1}) is None:
        log(f"aggregates: {db_name}.cases_copies back to cases")
        db.cases.drop()
        db.cases_copies.rename("cases")
        moved = True
    # what a first start would scan the aggregates for: the copies have no due date and no outbox
    db.cases_due.update_one({"_id": "bigcases"}, {"$set": {"due_at": None}}, upsert=True)
    AggregateStore.markers_current(db.cases)  # (no outbox marker scan either)
    started = time.monotonic()
    penalty_store.ensure_indexes(db)
    seconds = round(time.monotonic() - started, 1)
    log(f"aggregates: penalty's ensure_indexes took {seconds} s")
    return {"moved_back": moved, "ensure_indexes_seconds": seconds,
            "indexes": sorted(i["name"] for i in db.cases.list_indexes())}


class Processes:
    """The penalty and api processes against one database prefix, stopped on exit."""

    def __init__(self, prefix: str, log_dir: Path, sweep_seconds: float):
        self.prefix, self.log_dir, self.procs = prefix, log_dir, {}
        self.sweep_seconds = sweep_seconds
        self.api = f"127.0.0.1:{free_port()}"

    def __enter__(self) -> "Processes":
        from services.launcher import command, processes, wait_healthy

        self.log_dir.mkdir(parents=True, exist_ok=True)
        table = processes()
        base = {**os.environ, "DB_PREFIX": self.prefix, "PYTHONWARNINGS": "ignore::DeprecationWarning",
                "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "ACCESS_LOG_LEVEL": "WARNING"}
        penalty_port = free_port()
        sweeps = {"OUTBOX_SWEEP_SECONDS": str(self.sweep_seconds), "FINDINGS_RECOUNT_SECONDS": str(self.sweep_seconds)}
        plan = {"penalty": ({"METRICS_PORT": str(penalty_port), "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
                             **sweeps},
                            f"http://127.0.0.1:{penalty_port}/health"),
                "api": ({"WEB_SERVER_ADDRESS": self.api, "API_WEB_SERVER_ADDRESS": self.api, "METRICS_PORT": "0",
                         "API_COOKIE_SECURE": "false"}, f"http://{self.api}/health/live")}
        for name, (extra, _) in plan.items():
            out = open(self.log_dir / f"{name}.log", "ab")
            self.procs[name] = subprocess.Popen(command(table[name]), env={**base, **extra}, stdout=out,
                                                stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        for name, (_, url) in plan.items():
            if not wait_healthy(url, timeout=120, proc=self.procs[name]):
                self.__exit__()
                raise SystemExit(f"bigcases: {name} did not start; see {self.log_dir / (name + '.log')}")
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def machine_token(client, prefix: str) -> str:
    from services.api import accounts
    from services.kernel.clock import utcnow

    db = client[f"{prefix}api"]
    name = f"bench-{uuid.uuid4().hex[:6]}"
    return accounts.create_user(db, name, "supervisor", utcnow(), kind="machine")["token"]


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far, from /proc (None where unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def database_pid(mongo_uri: str) -> int | None:
    """The FerretDB process listening on the MONGO_URI's port (to count its CPU), if one runs here."""
    port = urllib.parse.urlsplit(mongo_uri).port or 27017
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"ferretdb") and any(a.endswith(f":{port}".encode()) for a in cmd):
                return int(proc.name)
    return None


def time_queries(base: str, token: str, queries: dict[str, tuple[str, dict]], repeat: int, timeout: float,
                 pids: dict[str, int] | None = None) -> dict:
    """Call each (path, params) `repeat` times; times of 200 answers, other statuses counted apart; and
    the CPU ms per call each process in `pids` spent meanwhile (the work per call, which unlike the
    latency does not grow with the machine's load)."""
    out = {}
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    pids = pids or {}
    for name, (path, params) in queries.items():
        cpu_before = {p: cpu_seconds(pid) for p, pid in pids.items()}
        times, status, total = [], {}, None  # times of answers with 200 only; failures counted apart
        for _ in range(repeat):
            started = time.monotonic()
            try:
                resp = session.get(f"{base}/api/v1{path}", params=params, timeout=timeout)
                code = resp.status_code
                if code == 200:
                    total = resp.json().get("total")
            except requests.RequestException as exc:
                code = type(exc).__name__
            if code == 200:
                times.append(time.monotonic() - started)
            status[str(code)] = status.get(str(code), 0) + 1
            if len(times) >= 3 and min(times) > 1.0:
                break  # three answers over a second each: the verdict is clear, spare the server
            if code != 200 and (not times or sum(status.values()) - len(times) >= 3):
                # the first call (or three) failed: repeating only piles more scans on the database
                # server (a timed-out RPC's query keeps running there), so this query is reported as is
                break
        calls = sum(status.values())
        cpu = {p: round(1000 * (cpu_seconds(pid) - cpu_before[p]) / calls, 1)
               for p, pid in pids.items() if cpu_before[p] is not None and cpu_seconds(pid) is not None and calls}
        out[name] = {"path": path, "params": params, "status": status, "total": total, "calls": calls,
                     "failed": calls - len(times), "cpu_ms_per_call": cpu,
                     **percentiles(times)}
        log(f"{name}: p50 {out[name]['p50_ms']} ms, p95 {out[name]['p95_ms']} ms, max {out[name]['max_ms']} ms "
            f"(total {total}, {status}); CPU ms per call {cpu}")
    return out


def time_store(db, queries: dict[str, tuple[str, dict]], repeat: int) -> dict:
    """The same case queries straight on the database (services/penalty/store.py, no RPC, no HTTP):
    how much of each answer's time is the database's."""
    from services.penalty.domain.case import STAGES

    from services.kernel import findings_index as fi

    out = {}
    for name, (path, params) in queries.items():
        if not (path in ("/cases", "/case-figures", "/findings", "/findings-figures") or path.startswith("/cases/")):
            continue
        times = []
        for _ in range(repeat):
            started = time.monotonic()
            if path == "/findings-figures":
                fi.FindingsIndex(db.cases).counters()
            elif path == "/findings":
                fi.page([fi.FindingsIndex(db.cases)], dept=params.get("dept"), rule_id=params.get("rule_id"),
                        severity=params.get("severity"), limit=params.get("limit", 100),
                        offset=params.get("offset", 0))
            elif path.startswith("/cases/"):
                unpack_from(db.cases, db.cases.find_one({"_id": path.rsplit("/", 1)[1]}))
            elif path == "/case-figures":
                penalty_store.case_counts(db, params.get("dept"))
            else:
                overdue = {"true": True, "false": False}.get(params.get("overdue"))
                penalty_store.list_cases(db, dept=params.get("dept"), stage=params.get("stage"), overdue=overdue,
                                         limit=params.get("limit", 50), offset=params.get("offset", 0),
                                         stage_order=STAGES)
            times.append(time.monotonic() - started)
            if len(times) >= 3 and min(times) > 1.0:
                break  # as time_queries: three reads over a second each make the verdict clear
        out[name] = percentiles(times)
        log(f"store {name}: p50 {out[name]['p50_ms']} ms, p95 {out[name]['p95_ms']} ms")
    return out


def query_plan(depts: list[str], stage: str | None, case_id: str) -> dict[str, tuple[str, dict]]:
    """The console's overview and list queries (console/src/views/Overview.vue, Cases.vue)."""
    dept = depts[0]
    return {
        "figures": ("/case-figures", {}), "figures_dept": ("/case-figures", {"dept": dept}),
        "list": ("/cases", {"limit": 50}), "list_dept": ("/cases", {"dept": dept, "limit": 50}),
        "list_stage": ("/cases", {"stage": stage, "limit": 50} if stage else {"limit": 50}),
        "list_dept_stage": ("/cases", {"dept": depts[-1], "stage": stage, "limit": 50} if stage else {"dept": dept}),
        "list_overdue": ("/cases", {"overdue": "true", "limit": 50}),
        "case_detail": (f"/cases/{case_id}", {}),  # CaseDetail.vue: one aggregate document by _id
        # penalty's open findings (the findings index: counters + partitions; Findings.vue pages by 20,
        # the overview's getAll by 500)
        "findings_figures": ("/findings-figures", {}),  # the overview's findings figures (counters)
        "findings": ("/findings", {"source": "penalty", "limit": 20}),
        "findings_all": ("/findings", {"limit": 20}),  # every service's, merged (the inbox without filter)
        "findings_severity": ("/findings", {"source": "penalty", "severity": "critical", "limit": 20}),
        "findings_dept": ("/findings", {"source": "penalty", "dept": dept, "limit": 20}),
        # last: the slow ones (a deep page's skip keeps FerretDB busy after its RPC timed out)
        "findings_page_500": ("/findings", {"source": "penalty", "limit": 500, "offset": 1500}),
        "list_page_500": ("/cases", {"limit": 500, "offset": 1500}),  # the overview's getAll, last page
        "list_deep_page": ("/cases", {"limit": 50, "offset": 100000}),
    }


# the others read only the case list and counters
READS_AGGREGATES = frozenset({"case_detail", "findings_figures", "findings", "findings_all", "findings_severity", "findings_dept",
                              "findings_page_500"})


def judge(name: str, q: dict, cases: int, aggregates: int, target_ms: float = 150.0) -> str:
    """达标 only at 1,000,000 cases in what the query reads (the list, or the aggregate documents)."""
    size = aggregates if name in READS_AGGREGATES else cases
    if size < 1_000_000:
        return f"未在目标规模下测量（{size} 个案件，目标 1000000）"
    met = q.get("p95_ms") is not None and q["p95_ms"] <= target_ms and not q.get("failed")
    return "达标" if met else "未达标"


DEFAULT_OUT = ROOT / ".run" / "bench" / "api-cases.json"
MEASURE_HINT = ("scripts/with-infra.sh run -- .venv/bin/python -m services.simulator.bigcases "
                "--templates <penalty 数据库> --count 1000000")


# the last measurement at the full size, committed with the machine it ran on: what `make bench` prints on
# a clone that has not measured (filling 1,000,000 cases takes ≈ 21 minutes, measuring 1)
RECORDED = ROOT / "docs" / "bench" / "api-cases.json"


def report(path: Path = DEFAULT_OUT, recorded: Path = RECORDED) -> list[str]:
    """The last API latency figure (for `make bench`): where it comes from, at what size, on which machine,
    when. This clone's own last measurement (`path`), else the one recorded in the repository."""
    import json

    if Path(path).exists():
        source = f"来自本机 {path}"
    elif Path(recorded).exists():
        shown = Path(recorded).relative_to(ROOT) if Path(recorded).is_relative_to(ROOT) else recorded
        path, source = recorded, f"本机未测量，来自仓库记录 {shown}"
    else:
        return [f"API 概览与列表 p95 ≤ 150 ms（1000000 个案件）：本次未测量，也无既往结果；测量：{MEASURE_HINT}"]
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    cond, queries, m = data.get("conditions", {}), data.get("queries", {}), data.get("machine", {})
    lines = [f"API 概览与列表延迟（非本次测量；{source}，{data.get('started_at')} 测于 {m.get('cpu_model', '?')} "
             f"{cond.get('cores', m.get('nproc', '?'))} 核，案件列表 "
             f"{cond.get('list_cases')} 个案件、聚合文档 {cond.get('aggregate_documents')} 个，"
             f"负载 {cond.get('load_before')} → {cond.get('load_after')}，提交 {cond.get('git_commit')}；"
             f"重新测量：{MEASURE_HINT}）："]
    for name, q in queries.items():
        if cond.get("list_cases") is not None:
            q["verdict"] = judge(name, q, cond["list_cases"], cond.get("aggregate_documents") or 0,
                                 data.get("args", {}).get("target_p95_ms", 150.0))
        lines.append(f"  {name:<16} p50 {q.get('p50_ms')} / p95 {q.get('p95_ms')} ms（{q.get('calls', 0) - q.get('failed', 0)}"
                     f"/{q.get('calls')} 成功）：{q.get('verdict', '—')}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.simulator.bigcases", description=__doc__.splitlines()[0])
    parser.add_argument("--templates", help="penalty database holding real case documents")
    parser.add_argument("--report", action="store_true", help="only print the last figure (--out) and exit")
    parser.add_argument("--prefix", default="zhifa_bigcases_", help="DB_PREFIX of the filled database")
    parser.add_argument("--count", type=int, default=1_000_000, help="cases in the case list and counters")
    parser.add_argument("--aggregates", type=int, default=None,
                        help="fill the aggregate documents up to this many (default --count; fewer: what exists stays)")
    parser.add_argument("--batch", type=int, default=BATCH_MAX)
    parser.add_argument("--repeat", type=int, default=20, help="calls per query")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--sweep-seconds", type=float, default=86400.0,
                        help="outbox sweep and findings recount interval of the started penalty process")
    parser.add_argument("--target-p95-ms", type=float, default=150.0)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--only", default="", help="comma-separated query names to time (default: every query)")
    args = parser.parse_args(argv)
    if args.report:
        print("\n".join(report(Path(args.out))))
        return 0
    if not args.templates:
        parser.error("--templates is required (a penalty database holding real case documents)")
    # stopped from outside (a timeout, Ctrl-C): still stop the processes started here
    exit_on_sigterm()

    import pymongo

    mongo_uri = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
    client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000, tz_aware=True)
    results: dict[str, Any] = {"machine": machine(), "args": vars(args), "mongo_uri": mongo_uri,
                               "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    tmpl = templates(client, args.templates)
    tag, db_name = urllib.parse.quote(args.prefix.strip("_"), safe=""), f"{args.prefix}penalty"
    aggregates = args.count if args.aggregates is None else args.aggregates
    results["aggregates"] = aggregates_in_place(client, db_name)
    results["fill"] = fill(client, db_name, tmpl, aggregates, args.batch, tag)
    results["fill"]["stored"] = copies_stored(client[db_name].cases, tag, 10_000_000)
    results["list_fill"] = fill_list(client, db_name, tmpl, args.count, tag)
    results["findings_fill"] = fill_findings(client, db_name, tmpl, results["fill"]["stored"], tag)
    depts = results["fill"]["depts"]
    stage = next((k.split(".")[1] for k, _ in sorted(results["list_fill"]["counts"].items(), key=lambda kv: kv[1])
                  if not k.endswith(".1")), None)  # the rarest stage: a filter selecting few rows
    queries = query_plan(depts, stage, f"{tag}-{0:07d}")
    if args.only:
        unknown = set(args.only.split(",")) - set(queries)
        if unknown:
            parser.error(f"--only: unknown queries {sorted(unknown)}; known: {', '.join(queries)}")
        queries = {k: v for k, v in queries.items() if k in args.only.split(",")}
    load_before = load_average()
    results["store_only"] = time_store(client[db_name], queries, args.repeat)  # before the processes start
    amqp_uri, mgmt = os.environ.get("AMQP_URI", DEFAULT_AMQP_URI), os.environ.get("RABBIT_MGMT_URI")
    broker, vhost = (Broker(mgmt), f"zhifa-bigcases-{uuid.uuid4().hex[:6]}") if mgmt else (None, None)
    if broker:  # a vhost of its own: the processes started here consume nobody else's queues
        broker.create_vhost(vhost, urllib.parse.urlsplit(amqp_uri).username or "guest")
        os.environ["AMQP_URI"] = with_vhost(amqp_uri, vhost)
    try:
        with Processes(args.prefix, ROOT / ".run" / "bench" / "bigcases", args.sweep_seconds) as procs:
            token = machine_token(client, args.prefix)
            pids = {name: proc.pid for name, proc in procs.procs.items()}
            if database_pid(mongo_uri):
                pids["ferretdb"] = database_pid(mongo_uri)
            results["queries"] = time_queries(f"http://{procs.api}", token, queries, args.repeat, args.timeout, pids)
    finally:
        if broker:
            os.environ["AMQP_URI"] = amqp_uri
            broker.delete_vhost(vhost)
    results["conditions"] = {"cores": os.cpu_count(), "load_before": load_before, "load_after": load_average(),
                             "git_commit": git_commit(), "list_cases": args.count,
                             "aggregate_documents": results["fill"]["stored"],
                             "penalty_sweeps_seconds": args.sweep_seconds}
    cases, fat = args.count, results["fill"]["stored"]
    print(f"\nAPI 概览与列表查询延迟（案件列表与计数器 {cases} 个案件，案件聚合文档 {fat} 个；"
          f"{results['conditions']['cores']} 核，负载 {load_before} → {results['conditions']['load_after']}；"
          f"penalty 的发件箱扫描与发现重计数间隔 {args.sweep_seconds:g} 秒）")
    for name, q in results["queries"].items():
        q["verdict"] = verdict = judge(name, q, cases, fat, args.target_p95_ms)
        print(f"  {name:<16} 成功 {q['calls'] - q['failed']}/{q['calls']}（状态 {q['status']}）；成功请求 "
              f"p50 {q['p50_ms']} / p95 {q['p95_ms']} / max {q['max_ms']} ms；p95 ≤ {args.target_p95_ms:g} ms：{verdict}；"
              f"每次调用 CPU 毫秒 {q.get('cpu_ms_per_call')}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, results)
    print(f"结果已写入 {Path(args.out).resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
