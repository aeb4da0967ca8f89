"""Verifiable random draws (双随机): a deterministic, documented algorithm anyone can re-run.

This module is pure and needs only the Python standard library, so `zhifa verify-draw <file>`
works on a machine that has nothing but the published record (no servers, no suite settings).

Protocol (commit-reveal, or a public seed announced in advance)
----------------------------------------------------------------
1. **Announce.** Before drawing, the department publishes the *announcement*: the target pool
   (each member's id, name and risk grade), the inspector pool, the parameters (per-grade ratio
   or count, inspectors per target), the declared conflicts of interest to exclude, and how the
   seed will be obtained:
   - `commit_reveal`: the suite draws 32 random bytes (the seed, kept secret) and publishes only
     `commitment = SHA-256("zhifa-draw-seed-v1:" + seed)`;
   - `beacon`: a public value fixed in advance that nobody knows yet (e.g. a named lottery
     result on a named date); the announcement names the source.
   `announcement_digest = SHA-256(canonical JSON of the announcement)` is what gets published
   (and what a verifier compares with the one they saw before the draw).
2. **Draw.** The seed is revealed and the result computed by `compute_result` below.
3. **Publish.** The record = announcement + digest + revealed seed + result + result digest +
   the list of every earlier attempt for the same draw (a draw is never re-run quietly).

Algorithm `zhifa-draw-v1`
-------------------------
- canonical JSON: UTF-8, keys sorted, no spaces (`separators=(",", ":")`, `ensure_ascii=False`).
- score(parts) = HMAC-SHA256(key = seed as UTF-8, message = "|".join(parts) as UTF-8), hex.
- Targets, stratified by risk grade: grades in ascending string order (ungraded members have
  grade ""); within a grade, members sorted by (score("target", draw_id, member id), member id);
  the first n are drawn, where n = counts[grade] if given, else ceil(size × ratios[grade])
  computed exactly (ratios are decimal strings or numbers, read with `fractions.Fraction(str(x))`),
  with "*" as the default ratio/count for grades not listed; n never exceeds the grade's size.
- Inspectors: for each drawn target in draw order, the eligible inspectors are the inspector
  pool minus those with a declared conflict with that target; they are sorted by (assignments so
  far, score("inspector", draw_id, target id, officer id), officer id) and the first k
  (`inspectors_per_target`) are assigned. With fewer than k eligible, none are assigned and the
  target is listed in `shortages` (an inspection needs at least k officers).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any, Mapping

ALGORITHM = "zhifa-draw-v1"
RECORD_FORMAT = "zhifa-draw-record/1"
SEED_PREFIX = "zhifa-draw-seed-v1:"
SEED_METHODS = ("commit_reveal", "beacon")


class DrawError(ValueError):
    """An announcement or parameter set the algorithm cannot run on (Chinese message, field)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def digest(obj: Any) -> str:
    return hashlib.sha256(canonical(obj)).hexdigest()


def seed_commitment(seed: str) -> str:
    return hashlib.sha256((SEED_PREFIX + seed).encode("utf-8")).hexdigest()


def score(seed: str, *parts: str) -> str:
    return hmac.new(seed.encode("utf-8"), "|".join(parts).encode("utf-8"), hashlib.sha256).hexdigest()


def _ratio(value: Any, name: str) -> Fraction:
    try:
        r = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        raise DrawError(f"抽取比例 {name} 必须是 0 到 1 之间的数", f"params.ratios.{name}") from None
    if not 0 <= r <= 1:
        raise DrawError(f"抽取比例 {name} 必须是 0 到 1 之间的数", f"params.ratios.{name}")
    return r


def quota(size: int, grade: str, params: Mapping[str, Any]) -> int:
    """How many members of a grade of `size` are drawn."""
    counts, ratios = params.get("counts") or {}, params.get("ratios") or {}
    if grade in counts or (grade not in ratios and "*" in counts):
        n = counts.get(grade, counts.get("*"))
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise DrawError(f"抽取数量 {grade or '*'} 必须是非负整数", f"params.counts.{grade or '*'}")
        return min(n, size)
    if grade in ratios or "*" in ratios:
        r = _ratio(ratios.get(grade, ratios.get("*")), grade or "*")
        return min(size, math.ceil(size * r))
    raise DrawError(f"风险等级 {grade or '（未分级）'} 没有抽取比例或数量（可用 * 设默认值）", "params")


def check_announcement(a: Mapping[str, Any]) -> None:
    """Raise DrawError when the announcement cannot be drawn on."""
    for key in ("draw_id", "targets", "inspectors", "params", "seed"):
        if key not in a:
            raise DrawError(f"公告缺少 {key}", key)
    ids = [t["id"] for t in a["targets"]]
    if len(set(ids)) != len(ids):
        raise DrawError("检查对象名录中有重复的对象", "targets")
    officers = [i["id"] for i in a["inspectors"]]
    if len(set(officers)) != len(officers):
        raise DrawError("检查人员名录中有重复的人员", "inspectors")
    k = a["params"].get("inspectors_per_target")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise DrawError("每个对象的检查人员数 inspectors_per_target 必须是正整数", "params.inspectors_per_target")
    method = (a["seed"] or {}).get("method")
    if method not in SEED_METHODS:
        raise DrawError(f"随机数来源必须是 {'、'.join(SEED_METHODS)} 之一", "seed.method")
    if method == "commit_reveal" and not (a["seed"].get("commitment") or ""):
        raise DrawError("先承诺后揭示的抽取须公布随机数承诺值", "seed.commitment")
    if method == "beacon" and not (a["seed"].get("source") or ""):
        raise DrawError("公开随机源抽取须事先写明随机源", "seed.source")
    for grade in sorted({t.get("grade") or "" for t in a["targets"]}):
        quota(sum(1 for t in a["targets"] if (t.get("grade") or "") == grade), grade, a["params"])


def compute_result(announcement: Mapping[str, Any], seed: str) -> dict[str, Any]:
    """The draw's result from the announcement and the revealed seed (the algorithm above)."""
    check_announcement(announcement)
    if not seed:
        raise DrawError("随机数种子为空", "seed")
    draw_id, params = announcement["draw_id"], announcement["params"]
    grades: dict[str, list[dict]] = {}
    for t in announcement["targets"]:
        grades.setdefault(t.get("grade") or "", []).append(t)
    drawn = []
    for grade in sorted(grades):
        members = sorted(grades[grade], key=lambda t: (score(seed, "target", draw_id, t["id"]), t["id"]))
        for rank, t in enumerate(members[:quota(len(members), grade, params)], start=1):
            drawn.append({"id": t["id"], "grade": grade, "rank": rank})
    conflicts = {(c["officer_id"], c["target_id"]) for c in announcement.get("conflicts") or ()}
    k = params["inspectors_per_target"]
    load = {i["id"]: 0 for i in announcement["inspectors"]}
    assignments, shortages = [], []
    for t in drawn:
        eligible = [o for o in load if (o, t["id"]) not in conflicts]
        if len(eligible) < k:
            shortages.append({"target_id": t["id"], "eligible": len(eligible), "needed": k})
            assignments.append({"target_id": t["id"], "officers": []})
            continue
        eligible.sort(key=lambda o: (load[o], score(seed, "inspector", draw_id, t["id"], o), o))
        chosen = eligible[:k]
        for o in chosen:
            load[o] += 1
        assignments.append({"target_id": t["id"], "officers": chosen})
    return {"targets": drawn, "assignments": assignments, "shortages": shortages}


def build_record(announcement: Mapping[str, Any], *, announced_at: str, performed_at: str, seed: str,
                 attempt: int = 1, previous_attempts: list[dict] | None = None) -> dict[str, Any]:
    """The publishable record of one performed attempt."""
    result = compute_result(announcement, seed)
    return {
        "format": RECORD_FORMAT, "algorithm": ALGORITHM, "attempt": attempt,
        "announcement": dict(announcement), "announcement_digest": digest(announcement),
        "announced_at": announced_at, "performed_at": performed_at, "seed": seed,
        "result": result, "result_digest": digest(result),
        "previous_attempts": list(previous_attempts or ()),
    }


@dataclass
class Verification:
    ok: bool
    problems: list[dict] = field(default_factory=list)   # {code, message}: the record does not verify
    notes: list[dict] = field(default_factory=list)      # {code, message}: what the verifier must check by hand
    announcement_digest: str | None = None
    result: dict | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "notes": self.notes,
                "announcement_digest": self.announcement_digest}


def _time(value: Any) -> datetime | None:
    try:
        t = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return t if t.utcoffset() is not None else None


def verify(record: Mapping[str, Any], expected_announcement_digest: str | None = None) -> Verification:
    """Recompute a published draw record; every discrepancy is a problem with a Chinese message."""
    problems: list[dict] = []
    notes: list[dict] = []

    def problem(code: str, message: str) -> None:
        problems.append({"code": code, "message": message})

    if not isinstance(record, Mapping):
        return Verification(False, [{"code": "not_a_record", "message": "文件内容不是抽取记录（JSON 对象）"}])
    if record.get("format") != RECORD_FORMAT or record.get("algorithm") != ALGORITHM:
        problem("unknown_format", f"记录格式或算法不是 {RECORD_FORMAT} / {ALGORITHM}，无法验证")
        return Verification(False, problems)
    announcement = record.get("announcement")
    if not isinstance(announcement, Mapping):
        problem("no_announcement", "记录缺少抽取公告")
        return Verification(False, problems)
    computed_digest = digest(announcement)
    if record.get("announcement_digest") != computed_digest:
        problem("announcement_altered", "抽取公告内容与公布的公告摘要不一致（名录、参数或承诺值被改动）")
    if expected_announcement_digest and expected_announcement_digest.lower() != computed_digest:
        problem("announcement_mismatch", "抽取公告摘要与事先公布的摘要不一致")
    seed = record.get("seed")
    seed_spec = announcement.get("seed") or {}
    if not isinstance(seed, str) or not seed:
        problem("no_seed", "记录未揭示随机数种子")
    elif seed_spec.get("method") == "commit_reveal":
        if seed_commitment(seed) != seed_spec.get("commitment"):
            problem("seed_mismatch", "揭示的随机数种子与事先公布的承诺值不符")
    elif seed_spec.get("method") == "beacon":
        notes.append({"code": "check_beacon",
                      "message": f"随机数来自公开随机源“{seed_spec.get('source')}”，记录值为“{seed}”，请对照该来源核实"})
    announced, performed = _time(record.get("announced_at")), _time(record.get("performed_at"))
    if announced is None or performed is None:
        problem("bad_times", "公告时间或抽取时间缺失或无效（须为带时区的 ISO 8601 时间）")
    elif performed <= announced:
        problem("drawn_before_announced", "抽取时间不晚于公告时间：名录与参数没有在抽取前固定")
    result = None
    if isinstance(seed, str) and seed:
        try:
            result = compute_result(announcement, seed)
        except (DrawError, KeyError, TypeError) as exc:
            problem("cannot_compute", f"无法按算法重算抽取结果：{exc}")
    if result is not None:
        if result != record.get("result"):
            problem("result_mismatch", "按公告、种子与算法重算的结果与公布的结果不一致")
        if record.get("result_digest") != digest(record.get("result")):
            problem("result_digest_mismatch", "公布的结果与其摘要不一致")
    previous = record.get("previous_attempts") or []
    attempt = record.get("attempt")
    if not isinstance(attempt, int) or attempt != len(previous) + 1:
        problem("attempts_inconsistent", "抽取次序号与此前各次抽取的记录数不符")
    if previous:
        notes.append({"code": "earlier_attempts",
                      "message": f"本次为第 {attempt} 次抽取，此前有 {len(previous)} 次抽取记录（均须公开说明理由）"})
    notes.append({"code": "compare_digest",
                  "message": f"请将公告摘要 {computed_digest} 与抽取前公布的摘要比对"})
    return Verification(not problems, problems, notes, computed_digest, result)


def main(argv: list[str] | None = None) -> int:
    """`python draw.py record.json [expected-announcement-digest]`: this file alone verifies a record."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("用法：python draw.py <抽取记录.json> [事先公布的公告摘要]")
        return 2
    try:
        with open(args[0], encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        print(f"无法读取抽取记录：{exc}")
        return 2
    record = data["record"] if isinstance(data, dict) and "record" in data and "format" not in data else data
    check = verify(record, args[1] if len(args) > 1 else None)
    print("通过" if check.ok else "不通过")
    for item in check.problems + check.notes:
        print(f"  [{item['code']}] {item['message']}")
    return 0 if check.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
