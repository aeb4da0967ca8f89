"""The cookiecutter-style plugin template (plugins/template): rendered like cookiecutter renders it
(Jinja over file names and contents, defaults from cookiecutter.json), installed with pip, discovered
through its entry point, every hook it implements answering for its department (meta-test)."""
from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest

from tests.unit.test_documents_cgj_plugin import ROOT, pip_install, run_probe

TEMPLATE = ROOT / "plugins" / "template"


def render_template(out: Path, **answers) -> Path:
    """cookiecutter's default rendering: each default may use earlier ones; names and files are Jinja."""
    env = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    context: dict = {}
    for key, default in json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8")).items():
        context[key] = answers.get(key, env.from_string(str(default)).render(cookiecutter=context))
    (root,) = [p for p in TEMPLATE.iterdir() if p.is_dir() and "{{" in p.name]
    for path in sorted(root.rglob("*")):
        if path.is_file():
            rel = env.from_string(str(path.relative_to(TEMPLATE))).render(cookiecutter=context)
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(env.from_string(path.read_text(encoding="utf-8")).render(cookiecutter=context),
                              encoding="utf-8")
    return out / context["project_slug"]


PROBE = r'''
import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from plugins.host import build_plugin_manager

host = build_plugin_manager()
entry = next(p for p in host.plugins() if p["name"] == "yjj")
dept = "511322-yjj"
case = SimpleNamespace(case_id="511322-yjj-2025-0001", dept=dept, decisions=[object()], acts=[])
at = datetime(2025, 6, 1, tzinfo=timezone(timedelta(hours=8)))
rules = dict(host.case_rules(dept))
answers = {
    "zhifa_dept_settings": host.dept_settings(dept).get("penalty"),
    "zhifa_case_rules": [f.rule_id for f in rules["PEN-YJJ-NO-OFFICERS"](case, None, None, at)],
    "zhifa_crime_thresholds": host.crime_thresholds(dept),
    "zhifa_document_number_prefix": host.document_number_prefix(
        dept, "penalty_decision", {"type": "case", "id": case.case_id, "facts": {}, "case": None}),
}
print(json.dumps({"entry": entry, "answers": answers, "failures": [f.to_dict() for f in host.failures],
                  "other_dept": host.document_number_prefix("511322-sthj", "penalty_decision")}, ensure_ascii=False))
'''


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    base = tmp_path_factory.mktemp("template")
    # 应急管理: a department no real plugin covers (卫健 wjj and 交通 jtj are installed distributions)
    project = render_template(base / "rendered", dept_name="应急管理", dept_suffix="yjj", number_code="应急")
    assert (project / "zhifa_yjj" / "__init__.py").is_file() and "{{" not in (project / "pyproject.toml").read_text()
    return run_probe(pip_install(project, base / "install"), PROBE)


def test_the_rendered_template_installs_and_is_discovered(probe):
    assert probe["entry"]["source"] == "entrypoint" and probe["entry"]["distribution"] == "zhifa-yjj 0.1.0"
    assert probe["failures"] == []


def test_every_hook_of_the_template_is_exercised_and_answers_for_its_department(probe):
    assert set(probe["entry"]["hooks"]) == set(probe["answers"])
    assert probe["answers"] == {"zhifa_dept_settings": {"filing_wd": 15}, "zhifa_case_rules": ["PEN-YJJ-NO-OFFICERS"],
                                "zhifa_crime_thresholds": [], "zhifa_document_number_prefix": "应急罚"}
    assert probe["other_dept"] is None
