"""`python -m services.simulator`: generate a county, check it offline, or run it against the suite.

  generate  write the event stream (JSON lines) and its truth (JSON)
  check     offline acceptance: the pure domains over the stream vs the truth, per rule
  run       publish to a running suite, collect its findings, compare with the truth

Exit status: 0 when every expected finding was raised and nothing else, 1 otherwise (for `run`,
judged on the services' stored open findings unless --no-db-check; the finding events are
compared too and any disagreement is reported).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime

from services.simulator.generator import CST, SCALES, county_config, simulate
from services.simulator.publish import DEFAULT_AMQP_URI, publish_amqp, publish_http
from services.simulator.report import (EventTap, FindingCollector, compare, db_findings, finding_key, format_table,
                                       offline_findings, report_document, wait_until_quiet, write_json)
from services.simulator.truth import expected_findings, keys, write_truth


def _config(args: argparse.Namespace):
    overrides = {k: v for k, v in (("region", args.region), ("year", args.year), ("preset", args.preset),
                                   ("tag", args.tag)) if v is not None}
    return county_config(args.scale, seed=args.seed, **overrides)


def _as_of(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text)
    return value if value.utcoffset() is not None else value.replace(tzinfo=CST)


def _subjects(sim) -> set[str]:
    """Every subject id this simulation owns, to tell its findings from other data in the suite."""
    out: set[str] = set()
    for env in sim.events:
        p = env["payload"]
        out.update(str(p[k]) for k in ("case_id", "item_code", "agency_id", "officer_id", "credential_no") if k in p)
    out.update(f"{o.officer_id}/{year}" for o in sim.officers for year in range(sim.config.year, sim.config.year + 10))
    return out


def cmd_generate(args: argparse.Namespace) -> int:
    sim = simulate(_config(args))
    with open(args.out, "w", encoding="utf-8") as fh:
        for env in sim.events:
            fh.write(json.dumps(env, ensure_ascii=False) + "\n")
    if args.truth:
        write_truth(args.truth, sim, _as_of(args.as_of))
    print(sim.summary())
    print(f"事件流：{args.out}" + (f"；真值：{args.truth}" if args.truth else ""))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    sim = simulate(_config(args))
    as_of = _as_of(args.as_of) or sim.as_of
    found = offline_findings(sim.events, as_of, preset=sim.config.preset)
    comparison = compare(keys(expected_findings(sim, as_of)), {finding_key(f.to_payload()) for f in found}, as_of)
    print(format_table(comparison, f"离线验收：{sim.summary()}"))
    from services.simulator.inspection import check_report  # the inspection part (its own stream and truth)

    inspection_ok = check_report(sim)
    from services.simulator import handover  # the handover part (行刑衔接)

    inspection_ok = handover.check_report(sim) and inspection_ok
    from services.simulator import coordination  # the coordination part (监督案件、投诉、考核…)

    inspection_ok = coordination.check_report(sim) and inspection_ok
    if args.out:
        write_json(args.out, report_document(comparison, source="offline", sim_summary=sim.summary(),
                                             config=sim.config.to_dict(), published=0))
    return 0 if comparison.ok and inspection_ok else 1


def cmd_run(args: argparse.Namespace) -> int:
    sim = simulate(_config(args))
    amqp_uri = args.amqp or os.environ.get("AMQP_URI", DEFAULT_AMQP_URI)
    print(sim.summary(), flush=True)
    rejections: list[dict] = []
    with FindingCollector(amqp_uri) as collector, \
            EventTap(amqp_uri, [("ingress.rejections", "#")], lambda env, _: rejections.append(env),
                     name="zhifa-sim-rejections"):
        sent_at = datetime.now(CST)
        if args.http:
            stats = publish_http(sim.events, args.http, batch=args.batch)
        else:
            stats = publish_amqp(sim.events, amqp_uri, rate=args.rate)
        print(f"已发布 {stats.published} 条（确认 {stats.confirmed}，否认 {stats.nacked}），"
              f"用时 {stats.elapsed:.1f} 秒，{stats.rate:.0f} 条/秒", flush=True)
        settled = wait_until_quiet(collector, args.settle, args.timeout, lambda m: print(m, flush=True))
        as_of = datetime.now(CST)  # the suite judged everything at its own "now"
        raised_all = collector.open_findings()
    mine = _subjects(sim)
    raised = [p for p in raised_all if p["subject_id"] in mine]
    expected = expected_findings(sim, as_of, arrived_at=sent_at)
    comparison = compare(keys(expected), {finding_key(p) for p in raised}, as_of)
    print(format_table(comparison, f"联调验收（监督发现事件）：{sim.summary()}"))
    rejected = len(rejections) + len(stats.rejections)
    if rejected:
        print(f"注意：入口拒收 {rejected} 条事件，例如：{(rejections or stats.rejections)[0]}")
    if not settled:
        print(f"注意：{args.timeout:.0f} 秒内监督发现事件仍未平稳，结果可能不完整")
    extra = {"as_of_note": "套件以运行时刻为评估时点；模拟年度之后的年度培训、赋权评估等计为环境性（ambient）预期",
             "settled": settled, "publish": stats.to_dict(), "rejected": rejected,
             "finding_events": collector.counts, "foreign_open_findings": len(raised_all) - len(raised),
             "expected_detail": [f.to_dict() for f in expected]}
    ok = comparison.ok and not rejected
    if not args.no_db_check:
        mongo_uri = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
        stored = [p for p in db_findings(mongo_uri, os.environ.get("DB_PREFIX", "zhifa_")) if p["subject_id"] in mine]
        db_comparison = compare(keys(expected), {finding_key(p) for p in stored}, as_of)
        print(format_table(db_comparison, "交叉核对（各服务数据库中的未关闭监督发现）："))
        by_events, by_db = {p["finding_key"] for p in raised}, {p["finding_key"] for p in stored}
        disagree = sorted(by_events ^ by_db)
        if disagree:
            print(f"注意：{len(disagree)} 条监督发现按事件净额与数据库状态不一致（同一发现的 raised/resolved "
                  "事件 as_of 不单调或乱序到达），以数据库为准；示例见报告 event_db_disagreements")
        extra["db_check"] = db_comparison.to_dict()
        extra["event_db_disagreements"] = [{"finding_key": k, "open_in_db": k in by_db,
                                            "events": collector.history.get(k, [])} for k in disagree[:50]]
        extra["event_db_disagreement_count"] = len(disagree)
        ok = db_comparison.ok and not rejected  # the stored state is authoritative
    from services.simulator.inspection import applies, run_live  # the inspection part, after the main stream

    if applies(sim):
        part = run_live(sim, amqp_uri, os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/"),
                        os.environ.get("DB_PREFIX", "zhifa_"), timeout=args.timeout)
        extra["inspection"] = part.to_dict()
        ok = ok and part.ok
    from services.simulator import handover  # the handover part (行刑衔接), after the main stream's cases

    part = handover.run_live(sim, amqp_uri, os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/"),
                             os.environ.get("DB_PREFIX", "zhifa_"), timeout=args.timeout)
    extra["handover"] = part.to_dict()
    ok = ok and part.ok
    from services.simulator import coordination  # the coordination part (监督案件、投诉、考核…)

    if len(sim.depts) >= 2:
        part = coordination.run_live(sim, amqp_uri, os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/"),
                                     os.environ.get("DB_PREFIX", "zhifa_"), timeout=args.timeout)
        extra["coordination"] = part.to_dict()
        ok = ok and part.ok
    if args.out:
        write_json(args.out, report_document(comparison, source="suite", sim_summary=sim.summary(),
                                             config=sim.config.to_dict(), published=stats.published, extra=extra))
        print(f"报告已写入 {args.out}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.simulator", description="县域模拟器")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (("generate", "生成事件流与真值"), ("check", "离线验收（纯领域规则）"),
                           ("run", "发布到运行中的套件并比对监督发现")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--seed", type=int, default=1, help="随机种子（同一种子生成完全相同的事件流）")
        p.add_argument("--scale", choices=sorted(SCALES), default="small", help="规模，默认 small")
        p.add_argument("--region", help="行政区划代码，默认 511322（营山县）")
        p.add_argument("--year", type=int, help="模拟年度，默认 2025")
        p.add_argument("--preset", help="辖区预设，默认 seed001")
        p.add_argument("--tag", help="区分多次模拟的编号（字母数字）")
        p.add_argument("--out", default={"generate": "events.jsonl"}.get(name),
                       help="输出文件（generate：事件流 JSON lines；check/run：报告 JSON）")
    for name in ("generate", "check"):
        sub.choices[name].add_argument("--as-of", help="评估时点（ISO 8601，不早于模拟年度末），默认模拟年度末")
    sub.choices["generate"].add_argument("--truth", help="真值 JSON 文件")
    run = sub.choices["run"]
    run.add_argument("--amqp", help="AMQP URI（默认环境变量 AMQP_URI）")
    run.add_argument("--http", help="改用 HTTP 入口，例如 http://127.0.0.1:8000")
    run.add_argument("--batch", type=int, default=500, help="HTTP 每批事件数")
    run.add_argument("--rate", type=float, help="发布速率（条/秒），默认尽快")
    run.add_argument("--settle", type=float, default=55,
                     help="监督发现事件静默多少秒视为处理完毕（应不短于 DEADLINE_SWEEP_SECONDS + DEADLINE_SWEEP_SPREAD_SECONDS + "
                          "到达静默期 10 秒：案件事实到齐后，“未作出/未送达/未公示”类发现由定时扫描判定，一次扫描找到的到期案件"
                          "在其后若干秒内分批重新判定）")
    run.add_argument("--timeout", type=float, default=900, help="最长等待秒数")
    run.add_argument("--no-db-check", action="store_true",
                     help="不从各服务数据库（MONGO_URI、DB_PREFIX）读取未关闭的监督发现做交叉核对")
    args = parser.parse_args(argv)
    return {"generate": cmd_generate, "check": cmd_check, "run": cmd_run}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
