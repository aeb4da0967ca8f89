"""The MongoDB-wire server alone, with the kernel's access pattern: FerretDB's backends compared.

    python -m services.simulator.bench_db [--ops 1000] [--clients 1] [--size-kb 12]   (MONGO_URI)

Per event the kernel reads the aggregate by `_id`, writes it back with a version check
(`replace_one({_id, version})`) and clears its outbox (`update_one({_id, version}, $set)`); a new
aggregate is an `insert_one`. This times each of these on documents shaped like a penalty case
(`--size-kb`, facts with Chinese text), `--clients` threads at once, in a scratch database dropped
afterwards, and counts the CPU seconds the database processes used per operation (FerretDB and, on
the PostgreSQL backend, PostgreSQL with its backends; services/simulator/bench.py ProcessSampler).
CPU per operation moves much less than operations/s when other processes share the machine, so it
is the figure to compare backends by on a busy machine; both are printed with the machine's load.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from typing import Callable

import pymongo


def case_document(agg_id: str, size_kb: int) -> dict:
    """A document of about `size_kb` KB with the shape of a penalty case (facts, snapshot, findings)."""
    fact = {"event_id": "", "type": "case.act_recorded", "occurred_at": "2025-03-01T09:00:00+08:00",
            "dept": "511322-scjg", "source": "511322-scjg-system",
            "payload": {"case_id": agg_id, "act": "on_site", "text": "现场检查经营场所，制作现场检查笔录，当事人签字确认。" * 8}}
    per_fact = len(json.dumps(fact, ensure_ascii=False).encode())
    facts = [{**fact, "event_id": str(uuid.uuid4())} for _ in range(max(1, size_kb * 1024 // per_fact))]
    return {"_id": agg_id, "version": 1, "facts": facts, "fact_ids": [f["event_id"] for f in facts],
            "snapshot": {"case_id": agg_id, "stage": "investigating", "dept": "511322-scjg"},
            "findings_open": {}, "findings_count": 0, "outbox": [], "outbox_pending": False, "due_at": None}


def timed(name: str, ids: list[str], clients: int, op: Callable[[pymongo.collection.Collection, str], None],
          col: pymongo.collection.Collection, others: dict[str, int]) -> dict:
    from services.simulator.bench import ProcessSampler

    shares = [ids[i::clients] for i in range(clients)]
    sampler = ProcessSampler({}, others)
    sampler.start()
    started = time.perf_counter()
    threads = [threading.Thread(target=lambda part=part: [op(col, agg_id) for agg_id in part]) for part in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    _, cpu = sampler.stop()
    procs = cpu["processes"]
    db_cpu = {n: round(1000 * procs[n]["cpu_s"] / len(ids), 2) for n in ("mongodb", "postgresql") if n in procs}
    return {"op": name, "ops": len(ids), "clients": clients, "seconds": round(seconds, 2),
            "ops_per_s": round(len(ids) / seconds, 1), "db_cpu_ms_per_op": db_cpu,
            "db_cpu_ms_per_op_total": round(sum(db_cpu.values()), 2), "others_cpu_share": cpu.get("others_cpu_share")}


def main(argv: list[str] | None = None) -> int:
    from services.simulator.bench import database_server, infrastructure, load_average

    parser = argparse.ArgumentParser(prog="python -m services.simulator.bench_db",
                                     description="数据库访问模式基准（按内核的读写方式，比较 FerretDB 后端）")
    parser.add_argument("--ops", type=int, default=1000, help="每种操作的次数")
    parser.add_argument("--clients", type=int, default=1, help="并发线程数")
    parser.add_argument("--size-kb", type=int, default=12, help="文档大小（KB）")
    parser.add_argument("--out", help="结果 JSON 文件")
    args = parser.parse_args(argv)
    uri = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
    others = infrastructure(os.environ.get("AMQP_URI", "amqp://127.0.0.1:1/"), uri)
    others.pop("rabbitmq", None)
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000, maxPoolSize=args.clients + 2)
    name = f"zhifa_benchdb_{uuid.uuid4().hex[:6]}"
    col = client[name]["cases"]
    ids = [f"511322-scjg-2025-{n:05d}" for n in range(args.ops)]
    template = case_document("x", args.size_kb)
    result = {"server": database_server(uri), "load_before": load_average(), "size_bytes":
              len(json.dumps(template, ensure_ascii=False).encode()), "phases": []}
    try:
        col.insert_one({"_id": "warm-up", "v": 1})
        col.create_index("outbox_pending")
        phases = [
            ("insert_one", lambda c, i: c.insert_one({**template, "_id": i})),
            ("find_one by _id", lambda c, i: c.find_one({"_id": i})),
            ("replace_one {_id, version}", lambda c, i: c.replace_one({"_id": i, "version": 1}, {**template, "_id": i, "version": 2})),
            ("update_one {_id, version} $set", lambda c, i: c.update_one({"_id": i, "version": 2},
                                                                        {"$set": {"outbox": [], "version": 3}})),
        ]
        for label, op in phases:
            result["phases"].append(timed(label, ids, args.clients, op, col, others))
            p = result["phases"][-1]
            print(f"{label:<32} {p['ops_per_s']:>8} 次/秒  数据库 CPU {p['db_cpu_ms_per_op']} 毫秒/次  "
                  f"其他进程 {p['others_cpu_share']}", flush=True)
        wrong = col.count_documents({"version": 3})
        result["check_version_3"] = wrong
    finally:
        client.drop_database(name)
        client.close()
    result["load_after"] = load_average()
    print(f"后端 {result['server'].get('backend')}，文档 {result['size_bytes']} 字节，{args.clients} 个并发，"
          f"负载 {result['load_before']} → {result['load_after']}；写回核对：{result['check_version_3']}/{args.ops} 条 version=3")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, ensure_ascii=False, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
