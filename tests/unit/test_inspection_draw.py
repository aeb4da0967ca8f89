"""Verifiable draws (双随机): the algorithm is deterministic, stratified, excludes conflicts, and a
published record verifies while any tampering is caught. Also the inspection code (检查码)."""
from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from services.inspection import code as ic
from services.inspection import draw as dr

SEED = "5c0ffee" * 9


def announcement(targets=None, inspectors=None, params=None, conflicts=(), seed=SEED):
    targets = targets if targets is not None else [
        {"id": f"9137032200000{n:05d}", "name": f"企业{n}", "grade": "ABCD"[n % 4]} for n in range(40)]
    inspectors = inspectors if inspectors is not None else [{"id": f"O{n}", "name": f"人员{n}"} for n in range(8)]
    return {"draw_id": "370322-scjg-SJ-2026-03", "dept": "370322-scjg", "plan_id": "P1", "targets": targets,
            "inspectors": inspectors,
            "params": params or {"ratios": {"A": 0.1, "B": 0.2, "C": 0.3, "D": 0.5}, "inspectors_per_target": 2},
            "conflicts": list(conflicts),
            "seed": {"method": "commit_reveal", "commitment": dr.seed_commitment(seed)}}


def record(a=None, seed=SEED, **kw):
    return dr.build_record(a or announcement(), announced_at="2026-03-02T09:00:00+08:00",
                           performed_at="2026-03-05T10:00:00+08:00", seed=seed, **kw)


def test_stratified_quota_is_ceil_of_ratio_per_grade():
    result = dr.compute_result(announcement(), SEED)
    per_grade = {g: sum(1 for t in result["targets"] if t["grade"] == g) for g in "ABCD"}
    assert per_grade == {"A": 1, "B": 2, "C": 3, "D": 5}  # 10 members each: ceil(10×r)
    assert [t["rank"] for t in result["targets"] if t["grade"] == "D"] == [1, 2, 3, 4, 5]
    assert all(len(a["officers"]) == 2 and len(set(a["officers"])) == 2 for a in result["assignments"])


def test_counts_and_default_grade():
    a = announcement(params={"counts": {"A": 3, "*": 1}, "inspectors_per_target": 2})
    result = dr.compute_result(a, SEED)
    assert {g: sum(1 for t in result["targets"] if t["grade"] == g) for g in "ABCD"} == {"A": 3, "B": 1, "C": 1, "D": 1}


def test_missing_ratio_for_a_grade_is_refused():
    with pytest.raises(dr.DrawError) as err:
        dr.compute_result(announcement(params={"ratios": {"A": 0.5}, "inspectors_per_target": 2}), SEED)
    assert "风险等级 B" in str(err.value)


def test_declared_conflicts_are_never_assigned():
    a = announcement()
    conflicts = [{"officer_id": o["id"], "target_id": t["id"]} for t in a["targets"][:20] for o in a["inspectors"][:5]]
    result = dr.compute_result(announcement(conflicts=conflicts), SEED)
    banned = {(c["officer_id"], c["target_id"]) for c in conflicts}
    for assignment in result["assignments"]:
        assert not any((o, assignment["target_id"]) in banned for o in assignment["officers"])


def test_too_few_eligible_inspectors_is_a_shortage_not_a_lone_inspector():
    victim = announcement()["targets"][3]["id"]
    a = announcement(inspectors=[{"id": "O1", "name": "甲"}, {"id": "O2", "name": "乙"}],
                     conflicts=[{"officer_id": "O1", "target_id": victim}],
                     params={"ratios": {"*": 1}, "inspectors_per_target": 2})
    result = dr.compute_result(a, SEED)
    assert result["shortages"] == [{"target_id": victim, "eligible": 1, "needed": 2}]
    assert {"target_id": victim, "officers": []} in result["assignments"]


def test_workload_is_balanced():
    result = dr.compute_result(announcement(params={"ratios": {"*": 1}, "inspectors_per_target": 2}), SEED)
    load: dict[str, int] = {}
    for a in result["assignments"]:
        for o in a["officers"]:
            load[o] = load.get(o, 0) + 1
    assert max(load.values()) - min(load.values()) <= 1  # 80 assignments over 8 officers


def test_published_record_verifies_from_the_json_file_alone(tmp_path):
    path = tmp_path / "draw.json"
    path.write_text(json.dumps(record(), ensure_ascii=False), encoding="utf-8")
    check = dr.verify(json.loads(path.read_text(encoding="utf-8")))
    assert check.ok, check.problems
    assert check.announcement_digest == dr.digest(announcement())


@pytest.mark.parametrize("tamper, code", [
    (lambda r: r["result"]["targets"].pop(), "result_mismatch"),
    (lambda r: r["result"]["assignments"][0]["officers"].reverse(), "result_mismatch"),
    (lambda r: r["announcement"]["targets"].pop(), "announcement_altered"),
    (lambda r: r["announcement"]["params"]["ratios"].update(D=0.9), "announcement_altered"),
    (lambda r: r.update(seed="another seed"), "seed_mismatch"),
    (lambda r: r.update(performed_at="2026-03-01T10:00:00+08:00"), "drawn_before_announced"),
    (lambda r: r.update(attempt=1, previous_attempts=[{"attempt": 1}]), "attempts_inconsistent"),
])
def test_tampered_record_fails(tamper, code):
    r = copy.deepcopy(record())
    tamper(r)
    check = dr.verify(r)
    assert not check.ok
    assert code in {p["code"] for p in check.problems}


def test_a_consistent_forgery_of_pool_and_digest_still_fails_on_the_seed_commitment():
    r = record()
    forged = copy.deepcopy(r["announcement"])
    forged["targets"] = forged["targets"][:-1]
    forged["seed"]["commitment"] = dr.seed_commitment("chosen later")
    r.update(announcement=forged, announcement_digest=dr.digest(forged))
    r["result"] = dr.compute_result(forged, SEED)
    r["result_digest"] = dr.digest(r["result"])
    check = dr.verify(r, expected_announcement_digest=dr.digest(announcement()))
    assert {p["code"] for p in check.problems} >= {"seed_mismatch", "announcement_mismatch"}


def test_beacon_seed_is_left_to_the_reader_to_check():
    a = announcement()
    a["seed"] = {"method": "beacon", "source": "2026-03-05 中国福利彩票双色球开奖号码"}
    check = dr.verify(record(a, seed="03 08 12 19 27 31 + 09"))
    assert check.ok and any(n["code"] == "check_beacon" for n in check.notes)


@hsettings(max_examples=40, deadline=None)
@given(n_targets=st.integers(0, 30), n_officers=st.integers(0, 6), k=st.integers(1, 3),
       ratio=st.fractions(0, 1, max_denominator=10), seed=st.text(min_size=1, max_size=20))
def test_properties_deterministic_within_bounds_and_order_free(n_targets, n_officers, k, ratio, seed):
    targets = [{"id": f"T{n:06d}", "name": str(n), "grade": "AB"[n % 2]} for n in range(n_targets)]
    officers = [{"id": f"O{n}", "name": None} for n in range(n_officers)]
    a = announcement(targets, officers, {"ratios": {"*": float(ratio)}, "inspectors_per_target": k}, seed=seed)
    result = dr.compute_result(a, seed)
    shuffled = dict(a, targets=list(reversed(targets)), inspectors=list(reversed(officers)))
    assert dr.compute_result(shuffled, seed) == result          # input order does not matter
    drawn = [t["id"] for t in result["targets"]]
    assert len(drawn) == len(set(drawn)) and set(drawn) <= {t["id"] for t in targets}
    for a_ in result["assignments"]:
        assert len(a_["officers"]) in (0, k) and len(set(a_["officers"])) == len(a_["officers"])
    assert dr.verify(record(a, seed=seed)).ok


# ---- inspection code (检查码) -------------------------------------------------------------------

KEY = ic.private_key("11" * 32)
CLAIMS = {"v": 1, "inspection_id": "JC-1", "dept": "370322-scjg", "agency_id": "A1",
          "officers": [{"id": "O1", "name": "刘洋", "credential_no": "鲁A001"}], "items": ["J1"],
          "approval": {"approved_by": "王建国", "approved_at": "2026-04-07T16:00:00+08:00"},
          "from": "2026-04-08T09:30:00+08:00", "to": "2026-04-08T11:00:00+08:00"}


def test_code_round_trips_with_the_public_key_only():
    token = ic.sign(CLAIMS, KEY)
    assert ic.verify(token, ic.public_key_hex(KEY)) == CLAIMS
    assert ic.sign(CLAIMS, KEY) == token  # deterministic


def test_code_refuses_anything_outside_the_legality_view():
    with pytest.raises(ValueError):
        ic.sign({**CLAIMS, "target_name": "某企业"}, KEY)


@pytest.mark.parametrize("mangle", [
    lambda t: t.replace("ZFJC1.", "ZFJC2."),
    lambda t: t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB"),
    lambda t: "ZFJC1." + ic._b64(ic.claims_bytes({**CLAIMS, "items": ["J2"]})) + "." + t.split(".")[2],
    lambda t: "garbage",
])
def test_forged_or_altered_codes_fail(mangle):
    with pytest.raises(ic.CodeError):
        ic.verify(mangle(ic.sign(CLAIMS, KEY)), ic.public_key_hex(KEY))


def test_code_from_another_key_fails():
    other = ic.private_key("22" * 32)
    with pytest.raises(ic.CodeError):
        ic.verify(ic.sign(CLAIMS, other), ic.public_key_hex(KEY))


# ---- zhifa verify-draw (needs nothing but the record) ---------------------------------------------

def test_cli_verify_draw_exit_codes(tmp_path):
    import io

    from services.cli import main

    good = tmp_path / "good.json"
    good.write_text(json.dumps({"record": record()}, ensure_ascii=False), encoding="utf-8")  # as the public page serves it
    out = io.StringIO()
    assert main(["verify-draw", str(good), "--announcement-digest", dr.digest(announcement())], out=out) == 0
    assert "通过" in out.getvalue() and "不通过" not in out.getvalue()
    bad = copy.deepcopy(record())
    bad["seed"] = "0" * 64
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    out = io.StringIO()
    assert main(["verify-draw", str(path), "--json"], out=out) == 1
    assert "seed_mismatch" in {p["code"] for p in json.loads(out.getvalue())["problems"]}
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json", encoding="utf-8")
    assert main(["verify-draw", str(garbage)], out=io.StringIO()) == 2
    assert main(["verify-draw", str(tmp_path / "missing.json")], out=io.StringIO()) == 2


def test_verification_needs_only_the_standard_library():
    import subprocess
    import sys

    code = ("import sys, services.inspection.verify; "
            "bad = [m for m in ('nameko', 'pymongo', 'kombu', 'cryptography') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=str(__import__("pathlib").Path(__file__).parents[2])).returncode == 0


def test_the_algorithm_file_alone_verifies_a_record(tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    alone = tmp_path / "draw.py"  # copied out of the package: only the standard library is needed
    shutil.copy(Path(dr.__file__), alone)
    good = tmp_path / "record.json"
    good.write_text(json.dumps(record(), ensure_ascii=False), encoding="utf-8")
    run = subprocess.run([sys.executable, "-I", str(alone), str(good), dr.digest(announcement())],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0 and "通过" in run.stdout, run.stdout + run.stderr
    bad = record()
    bad["result"]["targets"] = bad["result"]["targets"][1:]
    good.write_text(json.dumps(bad), encoding="utf-8")
    run = subprocess.run([sys.executable, "-I", str(alone), str(good)], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 1 and "result_mismatch" in run.stdout
