"""The console's in-browser draw verification (console/src/drawverify.js) agrees with draw.py, the
algorithm's reference: records built by draw.py verify in JavaScript (run by Node, as the browser would run
it) with the same digests, and every kind of tampering draw.py catches is caught with the same problem
codes. Node is the one the console's build needs (scripts/bootstrap.sh console)."""
from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

from services.inspection import draw as dr

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "console" / "src" / "drawverify.js"
SEED = "48f495f70ca7a266edc45b913016c8c8844b0407cc10bdd70e408e028056ec56"
RUNNER = """
import { readFileSync } from 'node:fs'
import { parseRecordJson, verifyRecord } from %s
const cases = JSON.parse(readFileSync(0, 'utf8'))
const out = cases.map(([text, expected]) => {
  let record
  try { record = parseRecordJson(text) } catch (e) { return { error: e.message } }
  const v = verifyRecord(record, expected)
  return { ok: v.ok, problems: v.problems.map((p) => p.code), notes: v.notes.map((n) => n.code),
           digest: v.announcement_digest || null, result: v.result }
})
process.stdout.write(JSON.stringify(out))
"""


def announcement(params=None, conflicts=(), method="commit_reveal", targets=None, inspectors=None):
    targets = targets if targets is not None else [
        {"id": f"9151132200000{n:05d}", "name": f"营山县第{n}食品商行“老字号”\\\n", "grade": "AB"[n % 2]}
        for n in range(13)] + [{"id": "91511322MA0000001X", "name": "未分级企业", "grade": None}]
    seed = {"method": "commit_reveal", "commitment": dr.seed_commitment(SEED)} if method == "commit_reveal" else \
        {"method": "beacon", "source": "2026年12月1日福利彩票3D开奖号码"}
    return {"draw_id": "511322-scjg-SJ-2026-01", "dept": "511322-scjg", "plan_id": None, "pool_id": "P",
            "announced_at": "2026-11-30T15:02:31.802284+08:00", "targets": targets,
            "inspectors": inspectors or [{"id": f"511322-scjg-01{n:02d}", "name": f"人员{n}"} for n in range(4)],
            "params": params or {"ratios": {"A": 0.5, "B": 0.25, "": 1.0}, "inspectors_per_target": 2},
            "conflicts": list(conflicts), "seed": seed}


def record(a=None, seed=SEED, **kw):
    return dr.build_record(a or announcement(), announced_at="2026-11-30T15:02:31.802284+08:00",
                           performed_at="2026-11-30T15:02:33.008592+08:00", seed=seed, **kw)


def run_js(cases: list[tuple[dict, str]]) -> list[dict]:
    texts = [[json.dumps(r, ensure_ascii=False), expected] for r, expected in cases]
    script = RUNNER % json.dumps(MODULE.as_uri())
    proc = subprocess.run(["node", "--input-type=module", "-e", script], input=json.dumps(texts, ensure_ascii=False),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def python(r: dict, expected: str = "") -> dict:
    v = dr.verify(r, expected or None)
    return {"ok": v.ok, "problems": [p["code"] for p in v.problems], "notes": [n["code"] for n in v.notes],
            "digest": v.announcement_digest}


def test_records_built_by_draw_py_verify_in_javascript_with_the_same_digest_and_result():
    conflicts = [{"officer_id": "511322-scjg-0100", "target_id": f"9151132200000{n:05d}", "relation": "亲属"}
                 for n in range(13)]
    variants = [
        record(),
        record(announcement(params={"counts": {"A": 3, "*": 1}, "inspectors_per_target": 3}, conflicts=conflicts)),
        record(announcement(params={"ratios": {"*": "1/3"}, "inspectors_per_target": 2})),
        record(announcement(params={"ratios": {"A": 1e-05, "*": 0.1}, "inspectors_per_target": 4}, conflicts=conflicts)),
        record(announcement(method="beacon"), seed="03 17 29"),
        record(attempt=2, previous_attempts=[{"attempt": 1, "reason": "名录库漏录"}]),
    ]
    got = run_js([(r, "") for r in variants])
    for r, js in zip(variants, got):
        assert {k: js[k] for k in ("ok", "problems", "notes", "digest")} == python(r), (r["announcement"]["params"], js)
        assert js["ok"] and js["digest"] == r["announcement_digest"]
        assert js["result"] == r["result"]
    assert any(s for s in (variants[1]["result"]["shortages"], variants[3]["result"]["shortages"]))


def test_tampering_is_caught_in_javascript_as_by_draw_py():
    good = record()

    def tampered(change):
        r = copy.deepcopy(good)
        change(r)
        return r

    first, last = good["result"]["targets"][0]["id"], good["announcement"]["targets"][-2]["id"]
    cases = [
        (tampered(lambda r: r["result"]["targets"][0].update(id=last if first != last else "X")), ""),
        (tampered(lambda r: r["announcement"]["targets"].pop()), ""),
        (tampered(lambda r: r["announcement"]["params"]["ratios"].update(A=0.75)), ""),
        (tampered(lambda r: r.update(seed="0" * 64)), ""),
        (tampered(lambda r: r.update(performed_at=r["announced_at"])), ""),
        (tampered(lambda r: r.update(announced_at="2026-11-30 15:02:31")), ""),
        (tampered(lambda r: r.update(attempt=3)), ""),
        (tampered(lambda r: r.update(format="other/1")), ""),
        (good, "0" * 64),
    ]
    got = run_js(cases)
    for (r, expected), js in zip(cases, got):
        want = python(r, expected)
        assert not want["ok"]
        assert {k: js[k] for k in ("ok", "problems", "notes")} == {k: want[k] for k in ("ok", "problems", "notes")}, \
            (want, js)


def test_number_literals_are_kept_so_an_integral_float_digests_as_python_wrote_it():
    r = record(announcement(params={"ratios": {"*": 1.0}, "inspectors_per_target": 2}))
    assert '"*":1.0' in dr.canonical(r["announcement"]).decode()
    [js] = run_js([(r, "")])
    assert js["ok"] and js["digest"] == r["announcement_digest"], js
