"""The plugin host, the built-in and department plugins, and a meta-test over the hook specs."""
from __future__ import annotations

import inspect
import json
import logging
import textwrap
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pluggy
import pytest

import plugins.hookspecs as hookspecs
from plugins.hookspecs import hookimpl
import plugins.mee as mee
import plugins.samr as samr
from plugins.builtin import BUILTIN_PLUGINS
from plugins.builtin.documents import FIELD_LABELS, DocumentError, MissingFieldError, render_document, template_fields
from plugins.host import PluginHost, UnknownPresetError, build_plugin_manager
from services.common.workdays import WorkdayCalendar
from services.penalty.domain.settings import PenaltySettings

SCJG = "371324-scjg"
STHJ = "371324-sthj"
OTHER = "371324-wjw"
AS_OF = datetime(2024, 11, 20, 9, 0, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture
def host():
    """Built-ins plus the two department plugins, registered directly (no entry points)."""
    h = build_plugin_manager(load_entrypoints=False)
    assert h.register(samr, "samr")
    assert h.register(mee, "mee")
    h.check_pending()
    return h


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """An installed distribution on sys.path declaring 'zhifa.plugins' entry points."""
    tag = uuid.uuid4().hex[:8]
    modules = {
        "good": """
            from plugins.hookspecs import hookimpl

            @hookimpl
            def zhifa_dept_settings(dept):
                return {"penalty": {"filing_wd": 9}} if dept.endswith("-test") else None

            @hookimpl
            def zhifa_crime_thresholds(dept):
                return [{"id": "TEST-1", "item_codes": ["t-1"], "measure": "m", "threshold": 1, "law": "测试", "name": "测试罪"}]
        """,
        "raising": """
            from plugins.hookspecs import hookimpl

            @hookimpl
            def zhifa_crime_thresholds(dept):
                raise RuntimeError("插件内部错误")
        """,
        "brokenimport": """
            import zhifa_module_that_does_not_exist
        """,
        "unknownhook": """
            from plugins.hookspecs import hookimpl

            @hookimpl
            def zhifa_presetz():
                return {}
        """,
        "badsettings": """
            from plugins.hookspecs import hookimpl

            @hookimpl
            def zhifa_dept_settings(dept):
                return {"penalty": {"no_such_setting": 1}}
        """,
        "disabled": """
            from plugins.hookspecs import hookimpl

            @hookimpl
            def zhifa_presets():
                return {"should_not_appear": {}}
        """,
    }
    names = {}
    for name, source in modules.items():
        module = f"zhifa_test_{name}_{tag}"
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        names[name] = module
    dist = tmp_path / f"zhifa_testplugins_{tag}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: zhifa-testplugins-{tag}\nVersion: 0.1\n")
    lines = "\n".join(f"{name}_{tag} = {module}" for name, module in names.items())
    (dist / "entry_points.txt").write_text(f"[zhifa.plugins]\n{lines}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return {name: f"{name}_{tag}" for name in modules}


def _failure(h, name):
    return next(f for f in h.failures if f.name == name)


# -- the host ----------------------------------------------------------------------------------

def test_builtin_plugins_are_registered_without_entrypoints():
    h = build_plugin_manager(load_entrypoints=False)
    listing = {p["name"]: p for p in h.plugins()}
    assert set(listing) == {name for name, _ in BUILTIN_PLUGINS}
    assert all(p["source"] == "builtin" for p in listing.values())
    assert listing["builtin.presets"]["hooks"] == ["zhifa_presets"]
    assert h.failures == []


def test_department_plugins_pass_check_pending(host):
    # check_pending ran in the fixture; running it again is harmless and nothing failed.
    host.check_pending()
    assert host.failures == []
    samr_entry = next(p for p in host.plugins() if p["name"] == "samr")
    assert samr_entry["source"] == "direct"
    assert "zhifa_case_rules" in samr_entry["hooks"]


def test_entrypoints_discovered_and_only_enabled_ones_registered(fake_distribution):
    ep = fake_distribution
    h = build_plugin_manager(enabled=[ep["good"]])
    names = {p["name"]: p for p in h.plugins()}
    assert ep["good"] in names and ep["disabled"] not in names and ep["raising"] not in names
    assert names[ep["good"]]["source"] == "entrypoint"
    assert names[ep["good"]]["distribution"].endswith(" 0.1")
    assert h.failures == []
    assert h.dept_settings("371324-test") == {"penalty": {"filing_wd": 9}}


def test_enabled_name_without_entrypoint_is_reported(fake_distribution):
    h = build_plugin_manager(enabled=[fake_distribution["good"], "not_installed"])
    assert "入口点" in _failure(h, "not_installed").error


def test_failing_plugins_are_isolated_and_reported(fake_distribution, caplog):
    ep = fake_distribution
    caplog.set_level(logging.WARNING, logger="zhifa.plugins")
    h = build_plugin_manager()  # all installed entry points

    # Import failure and a hook without a spec: recorded, logged, not registered.
    assert "ModuleNotFoundError" in _failure(h, ep["brokenimport"]).error
    assert _failure(h, ep["unknownhook"]).hook == "zhifa_presetz"
    registered = {p["name"] for p in h.plugins()}
    assert ep["brokenimport"] not in registered and ep["unknownhook"] not in registered
    assert any(ep["brokenimport"] in r.getMessage() for r in caplog.records)

    # A raising hook leaves the others' answers intact.
    thresholds = h.crime_thresholds("371324-test")
    assert [t["id"] for t in thresholds if t["id"] == "TEST-1"] == ["TEST-1"]
    raised = _failure(h, ep["raising"])
    assert raised.hook == "zhifa_crime_thresholds" and "插件内部错误" in raised.error
    assert any(ep["raising"] in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)

    # The same failure again is counted, not listed twice.
    h.crime_thresholds("371324-test")
    assert raised.count == 2
    assert sum(1 for f in h.failures if f.name == ep["raising"]) == 1

    # Bad data (unknown PenaltySettings key) drops only that plugin's answer.
    assert h.dept_settings("371324-test") == {"penalty": {"filing_wd": 9}}
    assert "no_such_setting" in _failure(h, ep["badsettings"]).error
    assert h.penalty_settings("371324-test", "national").filing_wd == 9


def test_raising_case_rule_is_isolated(host):
    def explode(case, facts, settings, as_of):
        raise ValueError("规则崩溃")

    class Exploding:
        @staticmethod
        @hookspecs.hookimpl
        def zhifa_case_rules(dept):
            return [("PEN-TEST-EXPLODE", explode)]

    assert host.register(Exploding, "exploding")
    rules = dict(host.case_rules(SCJG))
    assert set(rules) == {samr.RULE_FILING_LATE, "PEN-TEST-EXPLODE"}
    assert rules["PEN-TEST-EXPLODE"](None, {}, PenaltySettings(), AS_OF) == []
    assert _failure(host, "exploding").hook == "rule:PEN-TEST-EXPLODE"


def test_hook_wrappers_are_refused(host):
    class Wrapper:
        @staticmethod
        @hookspecs.hookimpl(wrapper=True)
        def zhifa_presets():
            return (yield)

    assert not host.register(Wrapper, "wrapper")
    assert "包装器" in _failure(host, "wrapper").error
    assert "wrapper" not in {p["name"] for p in host.plugins()}


# -- presets and department settings --------------------------------------------------------

def test_seed001_and_seed000_give_different_major_penalty_settings(host):
    seed001 = host.penalty_settings(OTHER, "seed001")
    seed000 = host.penalty_settings(OTHER, "seed000")
    assert (seed001.major_fine_threshold, seed001.major_filing_days) == (200_000, 15)
    assert (seed000.major_fine_threshold, seed000.major_filing_days) == (20_000, 60)
    assert seed000.major_kinds == ("production_stopped", "licence_revocation")
    assert "confiscation" in seed001.major_kinds
    assert host.penalty_settings(OTHER, "national") == PenaltySettings()


def test_presets_inherit_national_and_carry_seed_numbers(host):
    presets = host.presets()
    assert {"national", "seed001", "seed000", "seed003"} <= set(presets)
    assert presets["seed000"]["registry"]["min_tiers"] == 3  # from national
    assert presets["seed003"]["registry"] == {"min_tiers": 5, "lightest_tier_floor": 0.2, "standards_filing_due": "07-30"}
    assert host.preset("seed001")["personnel"]["training_hours_per_year"] == 20
    assert host.preset("seed001")["personnel"]["training_due"] == "11-15"
    assert host.preset("seed001")["registry"]["min_tiers"] == 5
    for preset in presets.values():
        PenaltySettings.from_mapping(**dict(preset["penalty"]))  # every key is a field name


def test_unknown_preset_is_a_named_error(host):
    with pytest.raises(UnknownPresetError, match="seed999"):
        host.penalty_settings(SCJG, "seed999")


def test_department_overrides_apply_on_top_of_the_preset(host):
    scjg = host.penalty_settings(SCJG, "seed000")
    assert (scjg.filing_wd, scjg.filing_extension_wd, scjg.decision_extension_days) == (15, 15, 30)
    assert scjg.major_fine_threshold == 20_000  # the preset still applies
    assert host.penalty_settings(STHJ, "seed000").filing_wd is None
    assert host.dept_settings(OTHER) == {}


def test_crime_thresholds_are_per_department(host):
    scjg = {t["id"]: t for t in host.crime_thresholds(SCJG)}
    assert scjg["SAMR-CRIME-140-SALES"]["measure"] == "sales_amount"
    assert scjg["SAMR-CRIME-140-SALES"]["threshold"] == 50_000
    assert "第一百四十条" in scjg["SAMR-CRIME-140-SALES"]["law"]
    sthj = {t["id"]: t for t in host.crime_thresholds(STHJ)}
    assert sthj["MEE-CRIME-338-HAZARDOUS-WASTE"]["measure"] == "hazardous_waste_tons"
    assert sthj["MEE-CRIME-338-HAZARDOUS-WASTE"]["threshold"] == 3
    assert host.crime_thresholds(OTHER) == []
    for t in [*scjg.values(), *sthj.values()]:
        assert t["bases"] and t["law"].startswith("《中华人民共和国刑法》")


def test_payload_extensions_are_merged(host):
    assert host.payload_extensions()["case.filed"]["filing_extension_approved"]["type"] == "boolean"


# -- documents ------------------------------------------------------------------------------

def test_every_template_renders_with_all_its_fields(host):
    templates = host.document_templates()
    titles = {t["title"] for t in templates.values()}
    assert {"立案审批表", "行政处罚告知书", "行政处罚决定书", "送达回证", "涉嫌犯罪案件移送书", "行政执法监督通知书"} <= titles
    for doc_type, template in templates.items():
        names = template_fields(template)
        assert set(names) <= set(FIELD_LABELS), doc_type  # every field has a Chinese label
        text = render_document(template, {n: f"<{n}>" for n in names})
        assert template["title"] in text and "{" not in text


def test_penalty_decision_renders_values():
    from plugins.builtin.documents import FINE_PAYMENT_CLAUSE, TEMPLATES

    template = TEMPLATES["penalty_decision"]
    fields = {n: "某" for n in template_fields(template)}
    fields.update(party_name="某某食品有限公司", doc_number="桓市监罚〔2024〕15号",
                  performance=render_document(FINE_PAYMENT_CLAUSE, {"payment_days": 15, "payment_bank": "某银行", "payment_account": "123"}))
    text = render_document(template, fields)
    assert "桓市监罚〔2024〕15号" in text and "某某食品有限公司" in text and "15日内" in text


def test_missing_fields_are_reported_by_name():
    from plugins.builtin.documents import TEMPLATES

    template = TEMPLATES["service_receipt"]
    fields = {n: "x" for n in template_fields(template)}
    del fields["recipient"]
    fields["witness"] = None  # None is missing too: never print "None" in a document
    with pytest.raises(MissingFieldError) as err:
        render_document(template, fields)
    assert err.value.missing == ("recipient", "witness")
    assert str(err.value) == "《送达回证》缺少字段：受送达人（recipient）、见证人（witness）"


def test_positional_template_fields_are_rejected():
    with pytest.raises(DocumentError):
        render_document("当事人：{}", {})


# -- 市场监管: 及时立案 across the National Day holiday ------------------------------------------

@dataclass
class Case:
    discovered_at: datetime | date | None
    filed_at: datetime | date | None
    filing_extension_approved: bool = False
    case_id: str = "C-2024-001"
    dept: str = SCJG


@pytest.fixture
def filing_rule(host):
    rules = dict(host.case_rules(SCJG))
    settings = host.penalty_settings(SCJG, "seed001")
    return lambda case, **kw: rules[samr.RULE_FILING_LATE](case, {}, settings, AS_OF, **kw)


# Discovered Fri 2024-09-27. National Day: Oct 1-7 off, Sun Sep 29 and Sat Oct 12 are make-up
# workdays, so the 15th working day is Wed 2024-10-23 (Monday–Friday counting would say Oct 18).
DISCOVERED = datetime(2024, 9, 27, 16, 30)


def test_filing_on_the_15th_working_day_after_the_holiday_is_on_time(filing_rule):
    assert filing_rule(Case(DISCOVERED, datetime(2024, 10, 23, 17, 0))) == []
    assert filing_rule(Case(DISCOVERED, date(2024, 10, 21))) == []  # late only by Mon–Fri counting


def test_filing_after_the_15th_working_day_is_a_finding(filing_rule):
    [finding] = filing_rule(Case(DISCOVERED, date(2024, 10, 24)))
    assert finding.rule_id == "PEN-SAMR-FILING-LATE"
    assert (finding.dept, finding.subject_type, finding.subject_id) == (SCJG, "case", "C-2024-001")
    assert finding.evidence["deadline"] == "2024-10-23"
    assert "2024-10-23" in finding.message and "未及时立案" in finding.message


def test_approved_extension_adds_15_working_days(filing_rule):
    assert filing_rule(Case(DISCOVERED, date(2024, 10, 24), filing_extension_approved=True)) == []
    [finding] = filing_rule(Case(DISCOVERED, date(2024, 11, 14), filing_extension_approved=True))
    assert finding.evidence["deadline"] == "2024-11-13" and finding.evidence["allowed_wd"] == 30


def test_unfiled_case_past_the_limit_is_a_finding(filing_rule):
    [finding] = filing_rule(Case(DISCOVERED, None))
    assert finding.evidence["filed_on"] is None and "至今未立案" in finding.message


def test_aware_times_are_read_in_china_time(filing_rule):
    # 2024-10-23 17:00 UTC is already Oct 24 in China.
    late = Case(DISCOVERED, datetime(2024, 10, 23, 17, 0, tzinfo=timezone.utc))
    assert len(filing_rule(late)) == 1


def test_deployment_calendar_can_be_passed_in(filing_rule):
    # A local extra holiday on Oct 23 moves the deadline to Oct 24.
    calendar = WorkdayCalendar(extra_holidays=[date(2024, 10, 23)])
    assert filing_rule(Case(DISCOVERED, date(2024, 10, 24)), calendar=calendar) == []


def test_filing_rule_is_silent_without_a_filing_limit():
    case = Case(DISCOVERED, date(2025, 1, 1))
    assert samr.check_filing_late(case, {}, PenaltySettings(), AS_OF) == []
    assert samr.zhifa_case_rules(dept=OTHER) == []


# -- meta-test (after datasette's tests/test_plugins.py) ----------------------------------------

HOOKSPECS = sorted(
    name for name, fn in vars(hookspecs).items()
    if inspect.isfunction(fn) and hasattr(fn, f"{hookspecs.PROJECT}_spec")
)


def test_hookspecs_were_found():
    assert "zhifa_presets" in HOOKSPECS and len(HOOKSPECS) >= 6


@pytest.mark.parametrize("hook_name", HOOKSPECS)
def test_every_hookspec_is_documented_implemented_and_in_the_readme(hook_name, host):
    doc = inspect.getdoc(getattr(hookspecs, hook_name))
    assert doc and "\n" not in doc.strip(), f"{hook_name}: needs a one-line docstring"
    implementers = {impl.plugin_name for impl in getattr(host.pm.hook, hook_name).get_hookimpls()}
    assert implementers, f"{hook_name}: no built-in or department plugin implements it"
    readme = (Path(hookspecs.__file__).parent / "README.md").read_text(encoding="utf-8")
    assert f"`{hook_name}(" in readme, f"{hook_name}: not described in plugins/README.md"


# -- coherent presets (issue 8 §4) ---------------------------------------------------------------

def test_every_built_in_preset_adopts_its_sources_whole(host):
    from plugins.builtin.presets import coherence_problems
    presets = host.presets()
    for name, sections in presets.items():
        assert coherence_problems(name, sections) == [], name
    # the default takes seed 003's five tiers together with its 20% floor for max-only fines
    assert (presets["seed001"]["registry"]["min_tiers"], presets["seed001"]["registry"]["lightest_tier_floor"]) == (5, 0.2)
    assert not [f for f in host.failures if f.hook == "zhifa_presets"]


def test_a_standard_with_a_ten_percent_lightest_tier_is_refused_under_the_default(host):
    from services.registry.domain import DiscretionStandard, InvalidStandardError, RegistrySettings, Tier, publish_standard
    settings = RegistrySettings.from_mapping(**host.preset("seed001")["registry"])
    tiers = tuple(Tier(t, t, "", "amount", lo, hi) for t, lo, hi in (
        ("lightest", 1000, 3000), ("lighter", 3000, 5000), ("normal", 5000, 7000), ("heavier", 7000, 9000),
        ("heaviest", 9000, 10000)))
    std = DiscretionStandard("C1", "511322-scjg", "e", datetime(2024, 1, 1, tzinfo=timezone.utc), date(2024, 1, 1),
                             None, "amount", 10000, None, True, tiers)
    with pytest.raises(InvalidStandardError) as err:
        publish_standard(std, settings)
    assert [v.rule for v in err.value.violations] == ["lightest_below_floor"]


def test_a_plugin_preset_that_takes_five_tiers_without_the_floor_is_reported(host):
    class Mixed:
        @hookimpl
        def zhifa_presets(self):
            return {"mixed": {"registry": {"min_tiers": 5}}}   # national floor 0.0 stays: incoherent
    host.register(Mixed(), "mixed-preset")
    assert "mixed" in host.presets()
    [failure] = [f for f in host.failures if f.name == "mixed-preset"]
    assert failure.hook == "zhifa_presets" and "不得只采用其中一部分" in failure.error
    shown = host.preset_in_effect("mixed")
    assert shown["sources"] is None and shown["problems"]


def test_the_preset_in_effect_names_its_sources_and_numbers(host):
    shown = host.preset_in_effect("seed001")
    assert [s["id"] for s in shown["sources"]] == ["seed001.major", "seed001.training", "seed001.deadlines",
                                                   "seed003.discretion"]
    assert shown["settings"]["registry"]["lightest_tier_floor"] == 0.2 and shown["problems"] == []
    json.dumps(shown, ensure_ascii=False)  # served as JSON on /health and the API


# -- built-in rules are plugins; departments add or switch off rules in any service -------------

def test_every_service_evaluates_the_rules_the_host_gives_and_the_built_ins_come_from_a_plugin(host):
    from services.penalty.domain.rules import RULE_IDS
    from services.personnel.domain import PERSONNEL_RULES
    from services.registry.domain import RULES as REGISTRY_RULES
    assert [r for r, _ in host.rules("personnel", SCJG)] == [r for r, _ in PERSONNEL_RULES]
    assert [r for r, _ in host.rules("registry", SCJG)] == [r for r, _ in REGISTRY_RULES]
    penalty = [r for r, _ in host.rules("penalty", SCJG)]
    assert penalty[:len(RULE_IDS)] == list(RULE_IDS) and "PEN-SAMR-FILING-LATE" in penalty
    assert "builtin.rules" in {p["name"] for p in host.plugins()}


def test_a_department_plugin_switches_off_a_personnel_rule_and_adds_a_registry_rule(host):
    from services.common.findings import Finding
    from services.personnel import domain as per
    from services.registry import domain as reg

    def item_named_test(item, as_of, settings):
        v = item.version_at(as_of)
        if v is not None and "测试" in v.name:
            return Finding("REG-X-TEST-NAME", "info", v.owning_dept, "item", v.code, as_of, {}, "事项名称含“测试”")

    class County:
        @hookimpl
        def zhifa_rules(self, service, dept):
            if not dept.endswith("-scjg"):
                return []
            return {"personnel": [("PER-TRAIN-PROGRESS", None)],
                    "registry": [("REG-X-TEST-NAME", item_named_test)]}.get(service, [])
    assert host.register(County(), "county-rules")
    assert "PER-TRAIN-PROGRESS" not in dict(host.rules("personnel", SCJG))
    assert "PER-TRAIN-PROGRESS" in dict(host.rules("personnel", STHJ))   # other departments keep it

    cst = timezone(timedelta(hours=8))
    officer = per.officer_from_facts([per.Fact("r1", "officer.registered", datetime(2024, 1, 2, 9, tzinfo=cst), SCJG,
                                               {"officer_id": "O1", "name": "李明", "agency_id": "A", "kind": "officer"})])
    at = datetime(2024, 8, 1, 9, tzinfo=cst)
    assert "PER-TRAIN-PROGRESS" in {f.rule_id for f in per.evaluate_officer(officer, at)}
    assert "PER-TRAIN-PROGRESS" not in {f.rule_id for f in per.evaluate_officer(officer, at,
                                                                                rules=host.rules("personnel", SCJG))}
    item = reg.ItemRecord("C1")
    item.apply(reg.Fact("i1", "item.published", datetime(2024, 1, 2, 9, tzinfo=cst), SCJG, {
        "item_code": "C1", "name": "测试事项", "category": "inspection", "effective_from": "2024-01-01",
        "legal_basis": [{"law": "《某法》", "article": "第一条"}]}))
    assert {f.rule_id for f in reg.evaluate_item(item, at, rules=host.rules("registry", SCJG))} == {"REG-X-TEST-NAME"}


def test_a_failing_rule_is_reported_where_health_and_metrics_read_it(host):
    class Broken:
        @hookimpl
        def zhifa_rules(self, service, dept):
            return [("REG-X-BROKEN", lambda item, as_of, settings: 1 / 0)] if service == "registry" else []
    host.register(Broken(), "broken-rules")
    from services.registry import domain as reg
    item = reg.ItemRecord("C1")
    assert reg.evaluate_item(item, datetime(2024, 8, 1, tzinfo=timezone.utc), rules=host.rules("registry", SCJG)) == []
    report = host.failure_report()
    [failure] = [f for f in report["failures"] if f["name"] == "broken-rules"]
    assert failure["hook"] == "rule:REG-X-BROKEN" and "ZeroDivisionError" in failure["error"]
    assert report["count"] == len(host.failures) and json.dumps(report)


def test_crime_thresholds_are_asked_once_per_dept_until_a_plugin_registers():
    """The merged thresholds are cached per dept (penalty asks once per unit of work); registering a
    plugin asks again; an answer during which a plugin failed is not cached."""
    calls = []

    class Counting:
        @hookimpl
        def zhifa_crime_thresholds(dept):
            calls.append(dept)
            return [{"id": f"C-{dept}", "bases": [{"law": "某法", "article": "第1条"}], "measure": "amount",
                     "threshold": 1, "law": "某法", "name": "计数"}]

    h = PluginHost(pluggy.PluginManager("zhifa"))
    h.pm.add_hookspecs(hookspecs)
    assert h.register(Counting, "counting")
    first = h.crime_thresholds("d1")
    assert h.crime_thresholds("d1") is first and calls == ["d1"]
    h.crime_thresholds("d2")
    assert calls == ["d1", "d2"]

    class Raising:
        @hookimpl
        def zhifa_crime_thresholds(dept):
            raise RuntimeError("boom")

    assert h.register(Raising, "raising")
    assert [t["id"] for t in h.crime_thresholds("d1")] == ["C-d1"] and calls == ["d1", "d2", "d1"]
    h.crime_thresholds("d1")
    assert calls == ["d1", "d2", "d1", "d1"]  # not cached while a plugin fails
