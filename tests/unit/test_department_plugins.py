"""The 卫健 (plugins/wjj) and 交通 (plugins/jtj) department plugins as separate distributions: each
installed by pip from its folder into a fresh directory, discovered by a clean interpreter through
the `zhifa.plugins` entry point, and every hook it implements exercised (meta-test); their
templates filled and rendered to PDF with Chinese text (pdftotext) and a picture of page 1."""
from __future__ import annotations

import re
import subprocess

import pytest

from tests.unit.test_documents_cgj_plugin import ROOT, pip_install, run_probe

# Runs in a clean interpreter that sees the installed distributions; prints one JSON line.
PROBE = r'''
import json, sys
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from plugins.host import build_plugin_manager
from services.common.crime import threshold_applies
from services.documents.render import fill_docx

CST = timezone(timedelta(hours=8))
AT = datetime(2025, 6, 1, 10, tzinfo=CST)
host = build_plugin_manager()
entries = {p["name"]: p for p in host.plugins() if p["name"] in ("wjj", "jtj")}
exercised = {"wjj": set(), "jtj": set()}
out = {"entries": entries, "failures": [f.to_dict() for f in host.failures],
       "modules": {m: sys.modules[m].__file__ for m in ("zhifa_wjj", "zhifa_jtj")}}

def decision(fine, item_code="ggcswsgltlss-035", party="91511322MA6XYZ1230", kinds=("warning", "fine")):
    return SimpleNamespace(at=AT, kinds=kinds, fine_amount=fine, revoked=False, item_code=item_code,
                           party={"id": party})

def case(dept, fine, measures=None, item_code="ggcswsgltlss-035"):
    d = decision(fine, item_code)
    return SimpleNamespace(case_id=dept + "-2025-0001", dept=dept, item_code=item_code, party=d.party,
                           measures=measures or {}, decisions=[d])

item = SimpleNamespace(bases=(("《公共场所卫生管理条例实施细则》", "第三十五条第一款"),))
other_item = SimpleNamespace(bases=(("《放射诊疗管理规定》", "第三十八条"),))
def facts(items=None, others=()):
    return SimpleNamespace(items=items if items is not None else (lambda dept, code, at: item), other_decisions=list(others))
earlier = {"case_id": "511322-wjj-2024-0100", "dept": "511322-wjj", "decision_no": "营卫医罚〔2024〕100号",
           "party_id": "91511322MA6XYZ1230", "decided_at": "2024-09-01T10:00:00+08:00", "revoked": False}

# -- 卫健 ---------------------------------------------------------------------------------------
W = "511322-wjj"
out["wjj_settings"] = host.dept_settings(W).get("penalty")
out["wjj_penalty"] = {k: getattr(host.penalty_settings(W, "seed001"), k) for k in ("filing_wd", "decision_days")}
exercised["wjj"].add("zhifa_dept_settings")
ths = host.crime_thresholds(W)
exercised["wjj"].add("zhifa_crime_thresholds")
out["wjj_thresholds"] = {t["id"]: [threshold_applies(t, "x", [("《中华人民共和国传染病防治法》", "第七十三条第（一）项")]),
                                  threshold_applies(t, "x", [("《中华人民共和国医师法》", "第五十九条")])] for t in ths}
rules = dict(host.case_rules(W))
exercised["wjj"].add("zhifa_case_rules")
rule = rules["PEN-WJJ-PUBLIC-PLACE-RANGE"]
out["wjj_rule"] = {
    "base_ok": len(rule(case(W, 3000), facts(), None, AT)),
    "base_too_high": [f.to_payload() for f in rule(case(W, 8000), facts(), None, AT)],
    "long_too_low": [f.to_payload() for f in rule(case(W, 3000, {"unlicensed_operation_days": 120}), facts(), None, AT)],
    "long_ok": len(rule(case(W, 8000, {"unlicensed_operation_days": 120}), facts(), None, AT)),
    "forged_too_low": len(rule(case(W, 4000, {"forged_licence": 1}), facts(), None, AT)),
    "prior_too_low": [f.to_payload() for f in rule(case(W, 2000), facts(others=[earlier]), None, AT)],
    "prior_other_dept": len(rule(case(W, 2000), facts(others=[{**earlier, "dept": "511322-scjg"}]), None, AT)),
    "prior_too_old": len(rule(case(W, 2000), facts(others=[{**earlier, "decided_at": "2022-09-01T10:00:00+08:00"}]), None, AT)),
    "other_item": len(rule(case(W, 8000), facts(items=lambda d, c, a: other_item), None, AT)),
    "unknown_item": len(rule(case(W, 8000), facts(items={}), None, AT)),
}

# -- 交通 ---------------------------------------------------------------------------------------
J, G = "511322-jtj", "511322-glj"
ths = host.crime_thresholds(J)
exercised["jtj"].add("zhifa_crime_thresholds")
out["jtj_thresholds"] = {t["id"]: threshold_applies(t, "x", [("《危险化学品安全管理条例》", "第八十六条第（二）项")]) for t in ths}
rules = dict(host.case_rules(G))
exercised["jtj"].add("zhifa_case_rules")
rule = rules["PEN-JTJ-OVERLOAD-FINE"]
out["jtj_rule"] = {f"{kg}/{fine}": [f.evidence["limit"] for f in rule(case(G, fine, {"overweight_kg": kg}, "glaqbhtl-064"), facts(), None, AT)]
                   for kg, fine in ((800, 0), (800, 200), (2500, 1500), (2500, 1600), (90000, 30000), (90000, 31000))}
out["jtj_rule_message"] = [f.message for f in rule(case(G, 200, {"overweight_kg": 800}), facts(), None, AT)]
out["jtj_rule_without_measure"] = len(rule(case(G, 99999), facts(), None, AT))

# -- both: documents ----------------------------------------------------------------------------
templates = host.document_templates()
exercised["wjj"].add("zhifa_document_templates"); exercised["jtj"].add("zhifa_document_templates")
files = {d: host.document_files(d) for d in (W, J, "511322-scjg")}
exercised["wjj"].add("zhifa_document_files"); exercised["jtj"].add("zhifa_document_files")
out["titles"] = {k: templates[k]["title"] for k in ("health_supervision_opinion", "correction_order")}
out["files"] = {d: {k: v[0] for k, v in f.items() if v[0] in ("wjj", "jtj")} for d, f in files.items()}
out["paths"] = {"health_supervision_opinion": files[W]["health_supervision_opinion"][1],
                "correction_order": files[J]["correction_order"][1]}
out["prefixes"] = {f"{d}|{k}": host.document_number_prefix(d, k) for d in (W, "511322-wsjk", J, "511322-jtys", G, "511322-sthj")
                   for k in ("penalty_decision", "filing_approval", "health_supervision_opinion", "correction_order")}
exercised["wjj"].add("zhifa_document_number_prefix"); exercised["jtj"].add("zhifa_document_number_prefix")
# 卫健 numbers by the case category the document names (its own series); 交通 ignores the subject
subject = lambda category: {"type": "case", "id": W + "-2025-0001", "facts": {"case_category": category}, "case": None}
out["by_category"] = {c: host.document_number_prefix(W, "penalty_decision", subject(c)) for c in ("公", "职", "不存在")}
out["by_category"]["jtj"] = host.document_number_prefix(J, "penalty_decision", subject("公"))
out["other_dept"] = {"rules": [r for r, _ in host.case_rules("511322-scjg") if r.startswith(("PEN-WJJ", "PEN-JTJ"))],
                     "thresholds": [t["id"] for t in host.crime_thresholds("511322-scjg") if t["id"].startswith(("WJJ", "JTJ"))],
                     "settings": host.dept_settings("371324-wjw")}
out["exercised"] = {k: sorted(v) for k, v in exercised.items()}
print(json.dumps(out, ensure_ascii=False))
'''

# The county simulator with both departments, judged offline by the pure domains with the installed
# plugins: the simulated numbers (卫健's filing limit, both crime thresholds) are the plugins', so every
# injected breach is raised and nothing else (services/simulator/report.py).
SIM_PROBE = r'''
import json
from services.simulator.generator import CountyConfig, DeptSpec, simulate
from services.simulator.report import compare, finding_key, format_table, offline_findings
from services.simulator.truth import INJECTED, expected_findings, keys

cfg = CountyConfig(seed=7, departments=(DeptSpec("wjj", 8, 1, 30, 3), DeptSpec("jtj", 8, 1, 30, 3)),
                   breach_rates={"PEN-CRIME-NO-HANDOVER": 0.1, "PEN-FILING-LATE": 0.1, "PEN-FINE-OUT-OF-TIER": 0.05})
sim = simulate(cfg)
expected = expected_findings(sim)
raised = {finding_key(f.to_payload()) for f in offline_findings(sim.events, sim.as_of, preset=sim.config.preset)}
comparison = compare(keys(expected), raised, sim.as_of)
print(json.dumps({"ok": comparison.ok, "table": format_table(comparison),
                  "injected": sorted({f"{f.rule_id}|{f.dept}" for f in expected if f.origin == INJECTED})},
                 ensure_ascii=False))
'''

FIELDS = {
    "health_supervision_opinion": {
        "agency_name": "营山县卫生健康局", "party_name": "营山县悦容美发店", "party_address": "营山县朗池镇北街12号",
        "inspected_on": "2025年6月3日", "problems": "顾客用毛巾未按规定清洗消毒；从业人员健康合格证明过期。",
        "violated_provision": "《公共场所卫生管理条例实施细则》第十四条", "legal_basis": "《公共场所卫生管理条例》第十条",
        "opinion": "立即对顾客用品用具进行清洗、消毒、保洁，组织从业人员进行健康检查。", "correct_by": "2025年6月20日",
        "officers": "张明、李华", "issued_on": "2025年6月3日"},
    "correction_order": {
        "agency_name": "营山县交通运输局", "party_name": "营山县顺达货运有限公司", "occurred_on": "2025年5月8日",
        "location": "国道318线营山治超站", "violation": "车货总质量超过限定标准行驶公路",
        "violated_provision": "《公路安全保护条例》第三十三条", "legal_basis": "《公路安全保护条例》第六十四条",
        "correction": "立即卸载超限货物，消除违法状态。", "correct_by": "2025年5月9日",
        "reconsideration_body": "营山县人民政府", "court": "营山县人民法院", "issued_on": "2025年5月8日"},
}
NUMBERS = {"health_supervision_opinion": "营卫监意〔2025〕7号", "correction_order": "营交运改〔2025〕3号"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("deptplugins")
    target = pip_install(ROOT / "plugins" / "wjj", base / "wjj")
    # the second distribution into the same target directory (pip --target merges)
    second = pip_install(ROOT / "plugins" / "jtj", base / "jtj")
    for path in second.iterdir():
        path.rename(target / path.name)
    return target


@pytest.fixture(scope="module")
def probe(installed):
    return run_probe(installed, PROBE)


def test_both_distributions_are_discovered_through_their_entry_points(probe, installed):
    assert {n: e["distribution"] for n, e in probe["entries"].items()} == {"wjj": "zhifa-wjj 0.1.0",
                                                                             "jtj": "zhifa-jtj 0.1.0"}
    assert all(e["source"] == "entrypoint" for e in probe["entries"].values())
    assert all(path.startswith(str(installed)) for path in probe["modules"].values())  # the installed copies
    assert probe["failures"] == []
    assert (installed / "zhifa_wjj" / "templates" / "health_supervision_opinion.docx").is_file()
    assert (installed / "zhifa_jtj" / "templates" / "correction_order.docx").is_file()


@pytest.mark.parametrize("name", ["wjj", "jtj"])
def test_every_hook_each_plugin_implements_is_exercised(probe, name):
    hooks = set(probe["entries"][name]["hooks"])
    assert hooks and hooks == set(probe["exercised"][name])


def test_health_numbers_and_crime_thresholds(probe):
    assert probe["wjj_settings"] == {"filing_wd": 5, "filing_extension_wd": 0}
    assert probe["wjj_penalty"] == {"filing_wd": 5, "decision_days": 90}
    # keyed by legal basis: the drinking-water article (with its 项) reaches 330, the 医师法 article 336
    assert probe["wjj_thresholds"] == {"WJJ-CRIME-330-INFECTED": [True, False], "WJJ-CRIME-330-RISK": [True, False],
                                       "WJJ-CRIME-336-INJURY": [False, True], "WJJ-CRIME-336-FAKE-DRUGS": [False, True]}


def test_public_place_fine_range_rule(probe):
    r = probe["wjj_rule"]
    (high,) = r["base_too_high"]
    assert high["rule_id"] == "PEN-WJJ-PUBLIC-PLACE-RANGE" and high["evidence"]["range"] == [500, 5000]
    assert "罚款上限为5000元" in high["message"]
    (long_low,) = r["long_too_low"]
    assert long_low["evidence"]["range"] == [5000, 30000] and "擅自营业120日" in long_low["message"]
    (prior,) = r["prior_too_low"]
    assert "营卫医罚〔2024〕100号" in prior["message"]
    assert (r["base_ok"], r["long_ok"], r["forged_too_low"]) == (0, 0, 1)
    assert (r["prior_other_dept"], r["prior_too_old"], r["other_item"], r["unknown_item"]) == (0, 0, 0, 0)


def test_transport_crime_threshold_and_overload_fine_cap(probe):
    assert probe["jtj_thresholds"] == {"JTJ-CRIME-133-1-HAZCHEM": True}
    # ≤1,000 kg over: warning only; 2,500 kg: 3 started tonnes x 500 = 1,500; far over: capped at 30,000
    assert probe["jtj_rule"] == {"800/0": [], "800/200": [0.0], "2500/1500": [], "2500/1600": [1500.0],
                                 "90000/30000": [], "90000/31000": [30000.0]}
    assert "应予警告" in probe["jtj_rule_message"][0] and probe["jtj_rule_without_measure"] == 0


def test_templates_numbers_and_other_departments(probe):
    assert probe["titles"] == {"health_supervision_opinion": "卫生监督意见书", "correction_order": "责令改正违法行为通知书"}
    assert probe["files"] == {"511322-wjj": {"health_supervision_opinion": "wjj"},
                              "511322-jtj": {"correction_order": "jtj"}, "511322-scjg": {}}
    p = probe["prefixes"]
    assert (p["511322-wjj|penalty_decision"], p["511322-wsjk|filing_approval"], p["511322-wjj|health_supervision_opinion"]) \
        == ("卫医罚", "卫医立", "卫监意")
    assert (p["511322-jtj|penalty_decision"], p["511322-jtys|correction_order"], p["511322-glj|penalty_decision"]) \
        == ("交运罚", "交运改", "交路罚")
    assert p["511322-wjj|correction_order"] is None and p["511322-jtj|health_supervision_opinion"] is None
    assert p["511322-sthj|penalty_decision"] is None
    assert probe["by_category"] == {"公": "卫公罚", "职": "卫职罚", "不存在": "卫医罚", "jtj": "交运罚"}
    assert probe["other_dept"] == {"rules": [], "thresholds": [], "settings": {}}


def test_the_simulator_uses_the_plugins_numbers_and_the_offline_check_agrees(installed):
    result = run_probe(installed, SIM_PROBE)
    assert result["ok"], result["table"]
    assert {"PEN-CRIME-NO-HANDOVER|511322-wjj", "PEN-CRIME-NO-HANDOVER|511322-jtj",
            "PEN-FILING-LATE|511322-wjj"} <= set(result["injected"])
    assert "PEN-FILING-LATE|511322-jtj" not in result["injected"]  # 交通 sets no filing limit


def test_the_plugins_import_nothing_of_the_suite_at_import_time():
    for name in ("wjj", "jtj"):
        source = (ROOT / "plugins" / name / f"zhifa_{name}" / "__init__.py").read_text(encoding="utf-8")
        top_level = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
        assert not [line for line in top_level if "services" in line or "plugins" in line], top_level


def test_the_shipped_docx_templates_are_the_generated_ones():
    from scripts.make_templates import targets
    from services.documents.render import TEMPLATES_DIR

    mine = {p: d for p, d in targets(TEMPLATES_DIR).items() if p.parent.parent.parent.name in ("wjj", "jtj")}
    assert len(mine) == 2 and all(p.read_bytes() == d for p, d in mine.items()), "run scripts/make_templates.py"


# ---- PDF: Chinese text and a picture of page 1 ------------------------------------------------

@pytest.mark.parametrize("kind", sorted(FIELDS))
def test_plugin_templates_render_to_pdf_with_chinese_text(kind, probe, tmp_path):
    from services.documents.render import docx_to_pdf, fill_docx
    from tests.unit.test_documents_render import _tool, red_and_dark_pixels

    template = open(probe["paths"][kind], "rb").read()
    pdf = tmp_path / f"{kind}.pdf"
    pdf.write_bytes(docx_to_pdf(fill_docx(template, {**FIELDS[kind], "doc_number": NUMBERS[kind]}, probe["titles"][kind])))
    text = subprocess.run([_tool("pdftotext"), "-layout", str(pdf), "-"], capture_output=True, check=True).stdout.decode()
    flat = re.sub(r"\s+", "", text)
    assert probe["titles"][kind] in flat and NUMBERS[kind] in flat and FIELDS[kind]["agency_name"] in flat
    assert FIELDS[kind]["party_name"] in flat and "{{" not in flat
    fonts = subprocess.run([_tool("pdffonts"), str(pdf)], capture_output=True, check=True).stdout.decode().splitlines()[2:]
    assert fonts and all(" yes " in line for line in fonts) and any("NotoSerifCJK" in line for line in fonts), fonts
    subprocess.run([_tool("pdftoppm"), "-r", "60", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True)
    (picture,) = tmp_path.glob("page*.ppm")
    red, dark = red_and_dark_pixels(picture.read_bytes())
    assert red > 200 and dark > 2000
