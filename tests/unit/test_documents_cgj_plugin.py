"""The 城管 plugin as a separate distribution (plugins/cgj): installed by pip from its folder into a
fresh directory, discovered by a clean interpreter through the `zhifa.plugins` entry point, and
every hook it implements exercised (meta-test)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = r'''
import json, sys
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from plugins.host import build_plugin_manager
from services.documents.render import fill_docx

CST = timezone(timedelta(hours=8))
host = build_plugin_manager()
entry = next(p for p in host.plugins() if p["name"] == "cgj")
exercised = set()

def case(act, fine=500.0):
    at = datetime(2025, 6, 1, 10, tzinfo=CST)
    decision = SimpleNamespace(at=at, kinds=("fine",) if fine else ("warning",), fine_amount=fine, revoked=False)
    return SimpleNamespace(case_id="511322-cgj-2025-0001", dept="511322-cgj", act_code=act,
                           party={"id": "511322199001011234"}, decisions=[decision])

earlier = SimpleNamespace(other_decisions=[{"party_id": "511322199001011234", "act_code": "ROAD-OCCUPIED",
                                            "decided_at": "2025-02-01T10:00:00+08:00", "revoked": False}])
rules = dict(host.case_rules("511322-cgj"))
exercised.add("zhifa_case_rules")
rule = rules["PEN-CGJ-FIRST-VIOLATION-FINED"]
as_of = datetime(2025, 6, 2, tzinfo=CST)
first = rule(case("ROAD-OCCUPIED"), SimpleNamespace(other_decisions=[]), None, as_of)
templates = host.document_templates()
exercised.add("zhifa_document_templates")
files = host.document_files("511322-cgj")
exercised.add("zhifa_document_files")
fields = {"agency_name": "营山县综合行政执法局", "doc_number": "营综执不罚〔2025〕1号", "party_name": "王某",
          "party_id": "511322199001011234", "party_address": "营山县朗池镇", "filed_on": "2025年5月20日",
          "cause": "擅自占用城市道路经营", "facts": "当事人在朗池大道占道经营水果摊。", "evidence": "现场照片",
          "violated_provision": "《城市道路管理条例》第二十七条", "corrected_on": "2025年5月20日",
          "education": "宣讲城市道路管理规定", "reconsideration_body": "营山县人民政府", "court": "营山县人民法院",
          "issued_on": "2025年6月1日"}
docx = fill_docx(open(files["no_penalty_decision"][1], "rb").read(), fields, "不予行政处罚决定书")
prefix = host.document_number_prefix("511322-cgj", "no_penalty_decision")
exercised.add("zhifa_document_number_prefix")
print(json.dumps({
    "entry": entry, "failures": [f.to_dict() for f in host.failures], "module": sys.modules["zhifa_cgj"].__file__,
    "rules_scjg": [r for r, _ in host.case_rules("511322-scjg")],
    "first": [f.to_payload() for f in first],
    "repeat": len(rule(case("ROAD-OCCUPIED"), earlier, None, as_of)),
    "not_listed": len(rule(case("SEWAGE-NO-PERMIT"), SimpleNamespace(other_decisions=[]), None, as_of)),
    "warning_only": len(rule(case("ROAD-OCCUPIED", fine=0), SimpleNamespace(other_decisions=[]), None, as_of)),
    "title": templates["no_penalty_decision"]["title"], "file_source": files["no_penalty_decision"][0],
    "other_dept_files": sorted(k for k, (name, _) in host.document_files("511322-scjg").items() if name == "cgj"),
    "prefix": prefix, "prefix_scjg": host.document_number_prefix("511322-scjg", "penalty_decision"),
    "docx_ok": docx[:2] == b"PK" and len(docx) > 10000, "exercised": sorted(exercised),
}, ensure_ascii=False))
'''


def pip_install(folder: Path, base: Path) -> Path:
    """pip install a plugin distribution (a copy, so no build files land in the repository) into a
    fresh target directory, offline (no index, no build isolation); the target."""
    source, target = base / "src", base / "site"
    shutil.copytree(folder, source)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(target), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return target


def run_probe(target: Path, code: str) -> dict:
    """Run `code` in a clean interpreter that sees the installed distribution and the suite; its JSON."""
    env = {"PYTHONPATH": f"{target}:{ROOT}", "PATH": "/usr/bin:/bin", "HOME": str(target)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(target),
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    return pip_install(ROOT / "plugins" / "cgj", tmp_path_factory.mktemp("cgj"))


@pytest.fixture(scope="module")
def probe(installed):
    return run_probe(installed, PROBE)


def test_the_distribution_is_discovered_through_its_entry_point(probe, installed):
    assert probe["entry"]["source"] == "entrypoint" and probe["entry"]["distribution"] == "zhifa-cgj 0.1.0"
    assert probe["module"].startswith(str(installed))  # the installed copy, not the repository folder
    assert probe["failures"] == []
    assert (installed / "zhifa_cgj" / "templates" / "no_penalty_decision.docx").is_file()  # package data shipped


def test_every_hook_the_plugin_implements_is_exercised(probe):
    assert probe["entry"]["hooks"] and set(probe["entry"]["hooks"]) == set(probe["exercised"])


def test_first_violation_rule(probe):
    (finding,) = probe["first"]
    assert finding["rule_id"] == "PEN-CGJ-FIRST-VIOLATION-FINED" and finding["severity"] == "warning"
    assert "首违不罚" in finding["message"] and finding["evidence"]["act_code"] == "ROAD-OCCUPIED"
    assert (probe["repeat"], probe["not_listed"], probe["warning_only"]) == (0, 0, 0)
    assert "PEN-CGJ-FIRST-VIOLATION-FINED" not in probe["rules_scjg"]


def test_templates_and_numbers(probe):
    assert probe["title"] == "不予行政处罚决定书" and probe["file_source"] == "cgj" and probe["docx_ok"]
    assert probe["other_dept_files"] == [] and probe["prefix"] == "综执不罚" and probe["prefix_scjg"] == "市监罚"


def test_the_plugin_imports_nothing_of_the_suite_at_import_time():
    source = (ROOT / "plugins" / "cgj" / "zhifa_cgj" / "__init__.py").read_text(encoding="utf-8")
    top_level = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert not [line for line in top_level if "services" in line or "plugins" in line], top_level
