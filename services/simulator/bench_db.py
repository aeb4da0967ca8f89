"""The MongoDB-wire server alone, with the kernel's access pattern: FerretDB's backends compared.

    python -m services.simulator.bench_db [--ops 1000] [--clients 1] [--size-kb 12] [--packed] [--side-writes]
                                          [--command-cost] [--case-list]   (MONGO_URI)

Per event the kernel reads the aggregate by `_id`, writes it back with a version check
(`replace_one({_id, version})`) and clears its outbox (`update_one({_id, version}, $set)`); a new
aggregate is an `insert_one`. This times each of these on documents shaped like a penalty case
(`--size-kb`, facts with Chinese text), `--clients` threads at once, in a scratch database dropped
afterwards, and counts the CPU seconds the database processes used per operation (FerretDB and, on
the PostgreSQL backend, PostgreSQL with its backends; services/simulator/bench.py ProcessSampler).
CPU per operation moves much less than operations/s when other processes share the machine, so it
is the figure to compare backends by on a busy machine; both are printed with the machine's load.
`--packed` stores the documents as the kernel does since issue 14 (services/kernel/packing.py: the
facts in one compressed binary field) and unpacks what it reads; run it with and without to compare.

`--side-writes` times instead the small writes a save brings with it (the due-date entry, the outbox
marker and its delete, the case list's locator claim and release, a reference added to `case_refs`,
a case made due, the save itself), each kind in ordered bulks of MAX_OPS as the kernel's `SideWrites`
sends them: what one operation of each kind costs the database (docs/bench/history.md, ninth session).

`--command-cost` sends the same small operations 1, 5 and 50 to a command: what every command costs
the database before its operations (docs/bench/history.md, tenth session).

`--case-list` runs penalty's own case-list sync (services/penalty/store.py) on `--ops` cases: each
unit of work of ≤ BATCH_MAX saves syncs its cases together, as the penalty service does at a unit's
end; the cases enter the list, then move through every stage of CASE_LIST_STAGES (a new
`(department, stage)` partition each time). It prices one case's sync (a move) for the database and
for the client (this process's CPU: the sync's Python and pymongo's), and checks that every case is
listed once, under its last stage, with counters equal to a recount (docs/bench/history.md, eleventh
session). Every phase also prints the client's CPU per operation.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
import uuid
from typing import Any, Callable

import bson
import pymongo
from pymongo import DeleteOne, InsertOne, ReplaceOne, UpdateOne

from services.kernel.mongo import drop_with_companions
from services.simulator import bench_leftovers
from services.kernel.packing import pack, unpack_from
from services.kernel.sidewrites import MAX_OPS, SideWrites
from services.penalty.domain.case import STAGES as CASE_STAGES


# phrases of an inspection record; with a random party name per fact the facts compress about as
# much as the simulator's case facts (~3x with zlib), so `--packed` is not flattered by repetition
CLAUSES = ("现场检查经营场所", "制作现场检查笔录", "当事人签字确认", "调取进货台账和销售记录", "询问当事人并制作询问笔录",
           "抽取样品送检验机构检验", "对涉案物品先行登记保存", "拍摄现场照片和视听资料", "核查营业执照和许可证件",
           "告知当事人陈述申辩权利", "责令当事人立即改正违法行为", "执法人员出示执法证件", "货值金额经核算", "涉案食品已下架封存")


def case_document(agg_id: str, size_kb: int) -> dict:
    """A document of about `size_kb` KB with the shape of a penalty case (facts, snapshot, findings)."""
    rng = random.Random(agg_id)

    def text() -> str:
        name = "".join(chr(rng.randint(0x4E00, 0x62FF)) for _ in range(rng.randint(30, 40)))
        parts = [rng.choice(CLAUSES) + (f"{rng.randint(1, 9999)}元" if rng.random() < 0.3 else "") for _ in range(8)]
        return f"当事人{name}：" + "，".join(parts) + f"，{rng.randint(2020, 2025)}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日。"

    fact = {"event_id": "", "type": "case.act_recorded", "occurred_at": "2025-03-01T09:00:00+08:00",
            "dept": "511322-scjg", "source": "511322-scjg-system",
            "payload": {"case_id": agg_id, "act": "on_site", "text": text()}}
    per_fact = len(json.dumps(fact, ensure_ascii=False).encode())
    facts = [{**fact, "event_id": str(uuid.uuid4()), "payload": {**fact["payload"], "text": text()}}
             for _ in range(max(1, size_kb * 1024 // per_fact))]
    return {"_id": agg_id, "version": 1, "facts": facts, "fact_ids": [f["event_id"] for f in facts],
            "snapshot": {"case_id": agg_id, "stage": "investigating", "dept": "511322-scjg"},
            "findings_open": {}, "findings_count": 0, "outbox": [], "outbox_pending": False, "due_at": None}


def timed(name: str, ids: list, clients: int, op: Callable[[pymongo.collection.Collection, Any], None],
          col: pymongo.collection.Collection, others: dict[str, int]) -> dict:
    """`op(col, item)` for every item of `ids` on `clients` threads; the database's CPU per operation
    (an item that is a list is a bulk: one operation per element)."""
    from services.simulator.bench import ProcessSampler

    shares = [ids[i::clients] for i in range(clients)]
    sampler = ProcessSampler({}, others)
    sampler.start()
    before = sampler.snapshot()  # (unrounded: a phase of fast operations uses a few clock ticks)
    started, client_before = time.perf_counter(), time.process_time()
    threads = [threading.Thread(target=lambda part=part: [op(col, agg_id) for agg_id in part]) for part in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds, client_cpu = time.perf_counter() - started, time.process_time() - client_before
    after = sampler.snapshot()
    _, cpu = sampler.stop()
    ops = sum(len(item) if isinstance(item, list) else 1 for item in ids)
    used = {n: after["cpu"][n] - before["cpu"][n] for n in ("mongodb", "postgresql") if n in after["cpu"]}
    db_cpu = {n: round(1000 * v / ops, 3) for n, v in used.items()}
    return {"op": name, "ops": ops, "commands": len(ids), "clients": clients, "seconds": round(seconds, 2),
            "ops_per_s": round(ops / seconds, 1), "db_cpu_ms_per_op": db_cpu,
            "db_cpu_ms_per_op_total": round(sum(db_cpu.values()), 2),
            "db_cpu_ms_per_command_total": round(1000 * sum(used.values()) / len(ids), 3) if ids else None,
            "client_cpu_ms_per_op": round(1000 * client_cpu / ops, 3),
            "others_cpu_share": cpu.get("others_cpu_share")}


def _parts(ids: list, size: int = MAX_OPS) -> list[list]:
    """`ids` in parts of ≤ `size`: one command (or unit of work) each (MAX_OPS: a bulk as the kernel sends it)."""
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def side_write_phases(db, ids: list[str], stored: dict) -> list[tuple[str, list, Callable, Any]]:
    """The kernel's and penalty's side writes (`--side-writes`), each kind in ordered bulks of MAX_OPS as
    `SideWrites.flush` sends them: (label, bulks, op, collection). In order: each phase finds the
    documents the ones before it left."""
    bulks = _parts(ids)
    small, refs, grown, cases = db.side_small, db.side_refs, db.side_refs_grown, db.side_cases

    def bulk(make):
        return lambda col, part: col.bulk_write([make(i) for i in part], ordered=True)

    return [
        ("insert 60-byte documents", bulks, bulk(lambda i: InsertOne({"_id": i, "due_at": 1.5})), small),
        ("replace upsert of an existing entry (cases_due)", bulks,
         bulk(lambda i: ReplaceOne({"_id": i}, {"due_at": 2.5}, upsert=True)), small),
        ("$set by _id (case list locator release)", bulks,
         bulk(lambda i: UpdateOne({"_id": i}, {"$set": {"key": "k", "version": 3}})), small),
        ("$set by _id with conditions (locator claim)", bulks,
         bulk(lambda i: UpdateOne({"_id": i, "key": "k", "version": {"$lt": 9}}, {"$set": {"lease": {"t": 1}}})), small),
        ("$max/$set upsert (outbox marker)", bulks,
         bulk(lambda i: UpdateOne({"_id": i}, {"$max": {"version": 7}, "$set": {"at": 1}}, upsert=True)), small),
        ("delete by _id (outbox marker done)", bulks, bulk(lambda i: DeleteOne({"_id": i})), small),
        ("$addToSet upsert of a new reference document (case_refs)", bulks,
         bulk(lambda i: UpdateOne({"_id": i}, {"$addToSet": {"cases": "c0"}}, upsert=True)), refs),
        ("$addToSet to a 120-case reference document", bulks,
         bulk(lambda i: UpdateOne({"_id": i}, {"$addToSet": {"cases": "new"}})), grown),
        ("$set/$inc on a stored case (mark due)", bulks,
         bulk(lambda i: UpdateOne({"_id": i}, {"$set": {"due_at": 2}, "$inc": {"version": 1}})), cases),
        ("replace {_id, version} of a stored case (a save)", bulks,
         bulk(lambda i: ReplaceOne({"_id": i, "version": 2}, {**stored, "_id": i, "version": 3})), cases),
    ]


COMMAND_SIZES = (1, 5, 50)  # operations per command in `--command-cost`


def command_cost_phases(db, ids: list[str]) -> list[tuple[str, list, Callable, Any]]:
    """`--command-cost`: the same small operations sent 1, 5 and 50 to a command (an update's
    statements, an insert's documents, a find's `_id $in` keys), so the database's CPU per command
    splits into what every command costs and what each operation adds (docs/bench/history.md, tenth
    session). The documents are 60-byte side entries; each phase changes what the one before left."""
    parts = {size: _parts([f"{i}:{size}" for i in ids], size) for size in COMMAND_SIZES}  # (own documents per size)
    kinds = [
        ("insert", lambda col, part: col.insert_many([{"_id": i, "due_at": 1.5} for i in part], ordered=True)),
        ("$set by _id", lambda col, part: col.bulk_write([UpdateOne({"_id": i}, {"$set": {"key": "k"}}) for i in part],
                                                         ordered=True)),
        ("find by _id", lambda col, part: list(col.find({"_id": {"$in": part}}))),
    ]
    return [(f"{kind}, {size} per command", parts[size], op, db.cost_small)
            for kind, op in kinds for size in COMMAND_SIZES]


# a case's stages without hearing, legal review or collective discussion (the penalty domain's own)
CASE_LIST_STAGES = CASE_STAGES[:3] + CASE_STAGES[7:11]
CASE_LIST_DEPTS = ("511322-scjg", "511322-sthj", "511322-zjj", "511322-jtj", "511322-wjj")


def case_list_phases(db, ids: list[str]) -> list[tuple[str, list, Callable, Any]]:
    """`--case-list`: penalty's case-list syncs of units of work of ≤ BATCH_MAX saves (an item is one
    unit: its (saved document, document it was saved over) pairs); first the cases enter the list,
    then they move through every later stage, in a department that changes with the stage (so a move
    changes partition as a stage change does)."""
    from services.kernel import config
    from services.penalty import store

    unit_size = config.checked("BATCH_MAX")  # (the services' setting: the environment's, else the default)

    def case(agg_id: str, n: int, step: int) -> dict:
        return {"_id": agg_id, "version": step + 1, "dept": CASE_LIST_DEPTS[(n + step) % len(CASE_LIST_DEPTS)],
                "snapshot": {"case_no": agg_id, "stage": CASE_LIST_STAGES[step], "overdue": False}}

    def units(step: int) -> list[list]:
        return _parts([(case(agg_id, n, step), case(agg_id, n, step - 1) if step else None)
                       for n, agg_id in enumerate(ids)], unit_size)

    def sync(database, unit: list) -> None:
        writes = SideWrites()
        for doc, old in unit:
            store.defer_sync(writes, database, doc, old)
        writes.flush()  # (the syncs run at the unit's end)

    moves = [unit for step in range(1, len(CASE_LIST_STAGES)) for unit in units(step)]
    return [(f"case list: new cases, units of {unit_size}", units(0), sync, db),
            (f"case list: moves, units of {unit_size}", moves, sync, db)]


def check_case_list(db) -> dict:
    """After `--case-list`: how many cases are listed (rows), how many under their last stage, and how
    many counters differ from a recount of the rows (store.repair)."""
    from services.penalty import store

    last = len(CASE_LIST_STAGES) - 1
    rows = store.recount(db)
    under_last = sum(n for key, n in rows.items() if store.key_parts(key)[1] == CASE_LIST_STAGES[last])
    return {"listed": sum(rows.values()), "under_last_stage": under_last, "counters_wrong": len(store.repair(db)["wrong"])}


def prepare_side_writes(db, ids: list[str], stored: dict) -> None:
    """The documents the `--side-writes` phases change: reference documents of 120 cases, stored cases."""
    cases = [f"511322-scjg-2025-{n:04d}" for n in range(120)]
    for part in _parts(ids):
        db.side_refs_grown.insert_many([{"_id": agg_id, "cases": cases} for agg_id in part])
        db.side_cases.insert_many([{**stored, "_id": agg_id, "version": 1} for agg_id in part])


def integer_at_least(low: int):
    """An argparse type: an integer ≥ `low`, refused with the value given otherwise."""
    def checked(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"应为整数，收到 {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"应不小于 {low}，收到 {value}")
        return value
    return checked


at_least_one = integer_at_least(1)  # (0 operations would leave nothing to divide by)


def main(argv: list[str] | None = None) -> int:
    from services.simulator.bench import database_server, infrastructure, load_average

    parser = argparse.ArgumentParser(prog="python -m services.simulator.bench_db",
                                     description="数据库访问模式基准（按内核的读写方式，比较 FerretDB 后端）")
    parser.add_argument("--ops", type=at_least_one, default=1000, help="每种操作的次数")
    parser.add_argument("--clients", type=at_least_one, default=1, help="并发线程数")
    parser.add_argument("--size-kb", type=at_least_one, default=12, help="文档大小（KB）")
    parser.add_argument("--packed", action="store_true", help="事实压缩为一个二进制字段存储（内核的存储方式）")
    mode = parser.add_mutually_exclusive_group()  # (one set of phases per run)
    mode.add_argument("--side-writes", action="store_true",
                      help="改测内核与处罚服务的旁路写（每种各按 50 条一批的有序批量写），而非聚合文档的读写")
    mode.add_argument("--command-cost", action="store_true",
                      help="改测每条命令的固定开销：同样的小操作每条命令 1、5、50 个（插入、$set、按 _id 查找）")
    mode.add_argument("--case-list", action="store_true",
                      help="改测处罚服务案件列表的同步：--ops 件案件按工作单元（每单元至多 BATCH_MAX 件）入列，再逐一经过各环节")
    parser.add_argument("--out", help="结果 JSON 文件")
    args = parser.parse_args(argv)
    if args.case_list and args.clients > 1:  # (units of one case's later stages would race each other)
        parser.error("--case-list 只用 1 个并发（--clients 1）：同一件案件的各环节须依次同步")
    uri = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
    others = infrastructure(os.environ.get("AMQP_URI", "amqp://127.0.0.1:1/"), uri)
    others.pop("rabbitmq", None)
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000, maxPoolSize=args.clients + 2)
    name = f"zhifa_benchdb_{uuid.uuid4().hex[:6]}"
    # a run killed before its `finally` leaves the database: the next bench run drops it (bench_leftovers.py)
    for line in bench_leftovers.clean(uri, lambda prefix: drop_with_companions(client, prefix), None):
        print(f"leftovers: {line}", flush=True)
    record = bench_leftovers.register(name, prefix=name, mongo_uri=uri)
    col = client[name]["cases"]
    ids = [f"511322-scjg-2025-{n:05d}" for n in range(args.ops)]
    template = case_document("x", args.size_kb)
    stored = pack(template) if args.packed else template
    result = {"server": database_server(uri), "load_before": load_average(), "size_bytes":
              len(json.dumps(template, ensure_ascii=False).encode()), "packed": args.packed,
              "stored_bson_bytes": len(bson.encode(stored)), "phases": []}
    try:
        col.insert_one({"_id": "warm-up", "v": 1})
        col.create_index("outbox_pending")
        phases = [
            ("insert_one", ids, lambda c, i: c.insert_one({**stored, "_id": i}), col),
            ("find_one by _id", ids, lambda c, i: unpack_from(c, c.find_one({"_id": i})), col),
            ("replace_one {_id, version}", ids,
             lambda c, i: c.replace_one({"_id": i, "version": 1}, {**stored, "_id": i, "version": 2}), col),
            ("update_one {_id, version} $set", ids, lambda c, i: c.update_one({"_id": i, "version": 2},
                                                                              {"$set": {"outbox": [], "version": 3}}), col),
        ]
        if args.side_writes:
            prepare_side_writes(client[name], ids, stored)
            phases = side_write_phases(client[name], ids, stored)
        elif args.command_cost:
            phases = command_cost_phases(client[name], ids)
        elif args.case_list:
            phases = case_list_phases(client[name], ids)
        for label, items, op, target in phases:
            result["phases"].append(timed(label, items, args.clients, op, target, others))
            p = result["phases"][-1]
            print(f"{label:<32} {p['ops_per_s']:>8} 次/秒  数据库 CPU {p['db_cpu_ms_per_op']} 毫秒/次  "
                  f"{p['db_cpu_ms_per_command_total']} 毫秒/条命令  本进程 CPU {p['client_cpu_ms_per_op']} 毫秒/次  "
                  f"其他进程 {p['others_cpu_share']}", flush=True)
        if args.command_cost:  # every document inserted once per phase, then each found in every find phase
            result["check_command_cost"] = client[name].cost_small.count_documents({"key": "k"})
            expected = len(COMMAND_SIZES) * args.ops
            print(f"核对：{result['check_command_cost']}/{expected} 条文档经 $set 修改", flush=True)
            result["check_version_3"] = None
        elif args.case_list:
            result["check_case_list"] = check_case_list(client[name])
            print(f"核对：{result['check_case_list']['under_last_stage']}/{args.ops} 件案件列在最后环节，共列出 "
                  f"{result['check_case_list']['listed']} 件，计数与重新清点不符 {result['check_case_list']['counters_wrong']} 项",
                  flush=True)
            result["check_version_3"] = None
        else:
            result["check_version_3"] = (client[name].side_cases if args.side_writes else col).count_documents({"version": 3})
    finally:
        drop_with_companions(client, name)  # (and the case list's, `--case-list`)
        client.close()
        bench_leftovers.release(record)
    result["load_after"] = load_average()
    print(f"后端 {result['server'].get('backend')}，文档 {result['size_bytes']} 字节"
          f"{'（压缩存储 ' + str(result['stored_bson_bytes']) + ' 字节）' if args.packed else ''}，{args.clients} 个并发，"
          f"负载 {result['load_before']} → {result['load_after']}" +
          (f"；写回核对：{result['check_version_3']}/{args.ops} 条 version=3"
           if not (args.command_cost or args.case_list) else ""))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, ensure_ascii=False, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
