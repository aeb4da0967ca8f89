"""`zhifa verify-draw <file>`: recompute a published draw record (draw.py) on any machine.

Needs nothing but the record (JSON, as served by GET /api/v1/public/draws/{draw_id} → `record`,
or the record itself). Exit status: 0 the record verifies, 1 it does not, 2 unreadable input.
"""
from __future__ import annotations

import json
from typing import TextIO

from services.inspection.draw import verify


def cmd_verify_draw(args, out: TextIO) -> int:
    try:
        with open(args.file, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        out.write(f"无法解析抽取记录：{exc}\n")
        return 2
    record = data.get("record") if isinstance(data, dict) and "record" in data and "format" not in data else data
    check = verify(record, args.announcement_digest)
    if args.json:
        out.write(json.dumps(check.to_dict(), ensure_ascii=False) + "\n")
    else:
        a = record.get("announcement", {}) if isinstance(record, dict) else {}
        out.write(f"抽取 {a.get('draw_id', '?')}（{a.get('dept', '?')}）第 {record.get('attempt', '?') if isinstance(record, dict) else '?'} 次："
                  f"{'通过' if check.ok else '不通过'}\n")
        for p in check.problems:
            out.write(f"  ✗ [{p['code']}] {p['message']}\n")
        for n in check.notes:
            out.write(f"  · [{n['code']}] {n['message']}\n")
    return 0 if check.ok else 1


def add_parser(sub) -> None:
    p = sub.add_parser("verify-draw", help="离线复核公开的随机抽取记录（双随机）：按公告、种子与算法重算结果")
    p.add_argument("file", help="抽取记录 JSON 文件（公开页面或 /api/v1/public/draws/{draw_id} 的内容）")
    p.add_argument("--announcement-digest", help="抽取前公布的公告摘要（SHA-256），一并比对")
    p.add_argument("--json", action="store_true", help="输出 JSON 结果")
    p.set_defaults(func=cmd_verify_draw)
