"""`zhifa`: the departmental integration command line.

    zhifa publish events.jsonl --dept 511322-scjg --amqp-uri amqp://511322-scjg:PASS@host:5672/
    zhifa publish events.jsonl --dept 511322-scjg --http http://host:8000 --token zf_...
    zhifa validate events.jsonl [--dept 511322-scjg]
    zhifa asyncapi [--output asyncapi.json]

One event per line (JSON Lines; blank lines are skipped, `-` reads standard input). `publish`
and `validate --dept` fill missing envelope fields (schema_version, dept, source) the same way.

Re-running the same file sends the same events. A missing `event_id` is derived from the event's
content (uuid5 of the department, source, type, occurred_at and payload), so a second run is
answered "duplicate", never applied twice; a missing `occurred_at` is an error of that line
(`occurred_at:required`) — when a fact happened is the department's to say, and "now" would make
each run a different event. Exit status: 0 every event accepted (or valid), 1 some were not,
2 the command could not run (bad arguments, unreadable file, connection or login refused).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from dataclasses import dataclass
from typing import TextIO

from contracts.catalog import Catalog, ContractError
from services.client import (STATUS_LABELS, HttpPublisher, PublishError, Publisher, Result, complete_envelope)

DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
VALIDATE_LABELS = {"valid": "通过", "invalid": "不通过"}


@dataclass
class Line:
    number: int
    event: dict | None  # None: the line could not be used; `problem` says why
    problem: Result | None = None


def read_lines(path: str, catalog: Catalog) -> list[Line]:
    """Parse a JSON Lines file with the catalog's own size/JSON/object checks."""
    stream: TextIO = sys.stdin if path == "-" else open(path, encoding="utf-8")
    try:
        out = []
        for number, text in enumerate(stream, start=1):
            if not text.strip():
                continue
            try:
                out.append(Line(number, catalog.decode(text.rstrip("\r\n"))))
            except ContractError as err:
                out.append(Line(number, None, Result(len(out), None, "invalid", reason=err.reason,
                                                     violations=err.to_list())))
        return out
    finally:
        if stream is not sys.stdin:
            stream.close()


CONTENT_NAMESPACE = uuid.UUID("0b0c5e8a-3d6f-4f51-9b0e-6c7a9d1e2f30")


def content_event_id(event: dict, dept: str, source: str) -> str:
    """The event id of an event given without one: the same content always gives the same id."""
    body = {"dept": event.get("dept") or dept, "source": event.get("source") or source, "type": event.get("type"),
            "occurred_at": event.get("occurred_at"), "payload": event.get("payload")}
    return str(uuid.uuid5(CONTENT_NAMESPACE, json.dumps(body, sort_keys=True, ensure_ascii=False)))


def prepare(lines: list[Line], dept: str, source: str) -> None:
    """Give each usable line a deterministic event id; a line without occurred_at becomes a problem."""
    for index, line in enumerate(lines):
        if line.event is None:
            continue
        if line.event.get("occurred_at") in (None, ""):
            line.problem = Result(index, line.event.get("event_id") if isinstance(line.event.get("event_id"), str) else None,
                                  "invalid", reason="required", violations=[{
                                      "field": "occurred_at", "rule": "required",
                                      "message": "缺少 occurred_at（事实发生时间，带时区的 ISO 8601）；"
                                                 "本工具不以当前时间代填，以免重复发送同一文件产生不同事件"}])
            line.event = None
            continue
        if line.event.get("event_id") in (None, ""):
            line.event = {**line.event, "event_id": content_event_id(line.event, dept, source)}


def describe(number: int, result: Result, labels: dict[str, str] | None = None) -> str:
    """One human-readable line: where, which event, what happened and why."""
    label = (labels or STATUS_LABELS).get(result.status, result.status)
    parts = [f"line {number}", result.event_id or "-", result.status, label]
    if result.reason and result.status not in ("accepted", "duplicate", "sent", "valid"):
        parts.append(f"reason={result.reason}")
    for v in result.violations:
        parts.append(f"{v.get('field')}:{v.get('rule')} {v.get('message', '')}".rstrip())
    if result.message:
        parts.append(result.message)
    if result.quarantine_id:
        parts.append(f"quarantine_id={result.quarantine_id}")
    return "  ".join(parts)


def summary(results: list[Result], labels: dict[str, str] | None = None) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    labels = labels or STATUS_LABELS
    detail = "，".join(f"{labels.get(s, s)} {s} {n}" for s, n in counts.items())
    return f"合计 {len(results)} 条" + (f"：{detail}" if detail else "")


def emit(lines: list[Line], results: list[Result], as_json: bool, out: TextIO,
         labels: dict[str, str] | None = None) -> None:
    for line, result in zip(lines, results):
        if as_json:
            out.write(json.dumps({"line": line.number, **result.to_dict()}, ensure_ascii=False) + "\n")
        else:
            out.write(describe(line.number, result, labels) + "\n")
    (sys.stderr if as_json else out).write(summary(results, labels) + "\n")


# ---- commands -------------------------------------------------------------------------------
def cmd_publish(args, out: TextIO) -> int:
    catalog = Catalog()
    lines = read_lines(args.file, catalog)
    source = args.source or f"{args.dept}-system"
    prepare(lines, args.dept, source)
    usable = [line for line in lines if line.event is not None]
    common = dict(batch_size=args.batch_size, max_retries=args.retries, prevalidate=args.validate, catalog=catalog)
    if args.http:
        publisher = HttpPublisher(args.http, args.dept, source, token=args.token, **common)
    else:
        publisher = Publisher(args.amqp_uri, args.dept, source, user=args.user, settle=args.settle, **common)
    try:
        with publisher:
            sent = publisher.publish([line.event for line in usable])
    except PublishError as exc:
        print(f"发布中止：{exc}", file=sys.stderr)
        return 2
    by_line = iter(sent)
    results = [line.problem if line.event is None else next(by_line) for line in lines]
    emit(lines, results, args.json, out)
    return 0 if all(r.ok for r in results) else 1


def cmd_validate(args, out: TextIO) -> int:
    catalog = Catalog()
    lines = read_lines(args.file, catalog)
    if args.dept:
        prepare(lines, args.dept, args.source or f"{args.dept}-system")
    results = []
    for index, line in enumerate(lines):
        if line.event is None:
            results.append(line.problem)
            continue
        env = line.event
        if args.dept:
            env = complete_envelope(env, dept=args.dept, source=args.source or f"{args.dept}-system")
        given = env.get("event_id")  # with --dept: the same id publish sends
        event_id = given if isinstance(given, str) else None
        try:
            catalog.validate(env, expected_dept=args.dept)
            results.append(Result(index, event_id, "valid"))
        except ContractError as err:
            results.append(Result(index, event_id, "invalid", reason=err.reason, violations=err.to_list()))
    emit(lines, results, args.json, out, VALIDATE_LABELS)
    return 0 if all(r.status == "valid" for r in results) else 1


def cmd_asyncapi(args, out: TextIO) -> int:
    from contracts.asyncapi import render

    text = render()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        out.write(text)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="zhifa", description="执法监督平台：部门对接工具（发布、校验事件，导出 AsyncAPI 文档）")
    sub = root.add_subparsers(dest="command", required=True)

    pub = sub.add_parser("publish", help="发布 JSON Lines 文件中的事件，逐条报告受理结果")
    pub.add_argument("file", help="事件文件（每行一个 JSON 对象；- 表示标准输入）")
    pub.add_argument("--dept", default=os.environ.get("ZHIFA_DEPT"), required=not os.environ.get("ZHIFA_DEPT"),
                     help="本部门代码，如 511322-scjg（默认取 ZHIFA_DEPT）")
    pub.add_argument("--source", help="来源系统标识，缺省为 <dept>-system")
    pub.add_argument("--amqp-uri", default=os.environ.get("ZHIFA_AMQP_URI") or os.environ.get("AMQP_URI")
                     or DEFAULT_AMQP_URI, help="AMQP 地址（默认取 ZHIFA_AMQP_URI / AMQP_URI）")
    pub.add_argument("--user", help="消息的 user_id，缺省为 AMQP 地址中的用户名")
    pub.add_argument("--http", metavar="URL", help="改用 HTTP 提交到网关（如 http://127.0.0.1:8000），同步返回结果")
    pub.add_argument("--token", default=os.environ.get("ZHIFA_TOKEN"), help="HTTP 访问令牌（默认取 ZHIFA_TOKEN）")
    pub.add_argument("--settle", type=float, default=2.0,
                     help="AMQP：最后一次确认后等待拒绝通知的秒数（默认 2）；期间无拒绝即视为已接受")
    pub.add_argument("--batch-size", type=int, default=100, help="每批事件数（默认 100）")
    pub.add_argument("--retries", type=int, default=5, help="连接失败时的最大重试次数（指数退避，默认 5）")
    pub.add_argument("--validate", action="store_true", help="发送前先按本地契约校验，不合格的不发送")
    pub.add_argument("--json", action="store_true", help="每行输出一个 JSON 结果（汇总写到标准错误）")
    pub.set_defaults(func=cmd_publish)

    val = sub.add_parser("validate", help="离线按契约校验 JSON Lines 文件（不连接平台）")
    val.add_argument("file", help="事件文件（每行一个 JSON 对象；- 表示标准输入）")
    val.add_argument("--dept", help="本部门代码：像 publish 一样补全缺省的信封字段，并要求 dept 一致")
    val.add_argument("--source", help="补全时使用的来源系统标识，缺省为 <dept>-system")
    val.add_argument("--json", action="store_true", help="每行输出一个 JSON 结果")
    val.set_defaults(func=cmd_validate)

    doc = sub.add_parser("asyncapi", help="输出由契约生成的 AsyncAPI 2.6 文档")
    doc.add_argument("--output", "-o", help="写入文件而不是标准输出")
    doc.set_defaults(func=cmd_asyncapi)

    from services.inspection.verify import add_parser as add_verify_draw_parser  # zhifa verify-draw <file>
    from services.api.users import add_parser as add_user_parser  # zhifa user create|list|disable|reset

    add_user_parser(sub)
    add_verify_draw_parser(sub)
    return root


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    args = parser().parse_args(argv)
    out = out or sys.stdout
    try:
        return args.func(args, out)
    except OSError as exc:
        print(f"无法读取或写入文件：{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
