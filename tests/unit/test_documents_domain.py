"""Documents domain: document numbers (文号), request checks, what a decision must state; the
template catalog and the plugin hooks for templates and number prefixes."""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugins.host import build_plugin_manager
from services.common.errors import DomainError
from services.documents import catalog
from services.documents import domain as d
from services.documents.layout import build_template, to_bytes

SETTINGS = d.DocumentsSettings()
TITLES = {"penalty_decision": "行政处罚决定书", "supervision_notice": "行政执法监督通知书",
          "service_receipt": "送达回证"}
KINDS = d.known_kinds(TITLES, SETTINGS)


# ---- numbers ----------------------------------------------------------------------------------

def test_number_of_a_market_regulation_decision():
    prefix = d.number_prefix("511322-scjg", "penalty_decision", SETTINGS, plugin_part="市监罚")
    assert d.format_number(prefix, 2025, 15, SETTINGS) == "营市监罚〔2025〕15号"


def test_number_prefix_falls_back_to_the_settings():
    assert d.number_prefix("511322-sthj", "penalty_decision", SETTINGS) == "营环罚"
    assert d.number_prefix("420222-wjj", "service_receipt", SETTINGS) == "阳卫健送"
    assert d.number_prefix("999999-xyz", "penalty_decision", SETTINGS) == "罚"  # unknown county and dept
    with pytest.raises(DomainError) as err:
        d.number_prefix("511322-scjg", "annual_report", SETTINGS)
    assert err.value.field == "kind" and "kind_codes" in str(err.value)


def test_settings_are_overridden_by_name_and_checked():
    custom = d.DocumentsSettings.from_mapping(county_shorts={"511322": "营山"}, number_format="{prefix}[{year}]{seq}")
    assert d.format_number(d.number_prefix("511322-scjg", "penalty_decision", custom), 2026, 3, custom) == "营山市监罚[2026]3"
    with pytest.raises(ValueError):
        d.DocumentsSettings.from_mapping(number_format="{prefix}〔{year}〕号")
    with pytest.raises(ValueError):
        d.DocumentsSettings.from_mapping(claim_keep_seconds=30, resume_after_seconds=60)
    with pytest.raises(ValueError):
        d.DocumentsSettings.from_mapping(no_such_setting=1)


@given(seq=st.integers(1, 10**6), year=st.integers(1990, 2100), other=st.integers(1, 10**6))
def test_numbers_read_back_and_differ_by_sequence(seq, year, other):
    number = d.format_number("营市监罚", year, seq, SETTINGS)
    m = re.fullmatch(r"营市监罚〔(\d{4})〕(\d+)号", number)
    assert m and (int(m.group(1)), int(m.group(2))) == (year, seq)
    assert (number == d.format_number("营市监罚", year, other, SETTINGS)) == (seq == other)


def test_chinese_date_and_counter_id():
    assert d.cn_date(date(2025, 3, 5)) == "2025年3月5日"
    assert d.counter_id("511322-scjg", "penalty_decision", 2025) == "511322-scjg|penalty_decision|2025"


# ---- requests ---------------------------------------------------------------------------------

def refused(**kw) -> DomainError:
    args = dict(kinds=KINDS, kind="penalty_decision", subject_type="case", subject_id="C-1", dept="511322-scjg",
                facts={"party_name": "某公司"})
    args.update(kw)
    with pytest.raises(DomainError) as err:
        d.check_request(**args)
    return err.value


def test_a_good_request_passes():
    assert d.check_request(KINDS, "penalty_decision", "case", "C-1", "511322-scjg", {"fine": 5000, "x": None}).title \
        == "行政处罚决定书"


@pytest.mark.parametrize("change, field, words", [
    ({"dept": "scjg"}, "dept", "部门编码"),
    ({"kind": "no_such"}, "kind", "未知的文书类型"),
    ({"subject_type": "person"}, "subject_type", "对象类型"),
    ({"kind": "supervision_notice"}, "subject_type", "只能为监督案件制作"),
    ({"subject_id": ""}, "subject_id", "对象编号"),
    ({"facts": ["x"]}, "facts", "JSON 对象"),
    ({"facts": {"Bad-Name": "x"}}, "facts", "字段名"),
    ({"facts": {"party_name": {"nested": 1}}}, "facts.party_name", "文字或数字"),
    ({"facts": {"flag": True}}, "facts.flag", "文字或数字"),
    ({"facts": {"facts": "长" * 5001}}, "facts.facts", "5000"),
    ({"request_id": "a.b"}, "request_id", "request_id"),
])
def test_bad_requests_name_the_field(change, field, words):
    err = refused(**change)
    assert err.field == field and words in str(err)


# ---- a decision states its legal basis and discretion tier -------------------------------------

def case_with_tier(tier):
    return {"case_id": "C-1", "dept": "511322-scjg", "case": {"decisions": [{"tier": "lighter"}, {"tier": tier}]}}


def test_decision_takes_the_tier_of_the_case():
    basis = d.decision_basis({"penalty_basis": "《食品安全法》第一百二十四条"}, case_with_tier("normal"))
    assert basis == {"penalty_basis": "《食品安全法》第一百二十四条", "discretion_tier": "normal", "tier": "normal",
                     "item_legal_basis": None, "source": "case"}
    named = d.decision_basis({}, case_with_tier("normal"), "《食品安全法》第一百二十四条", {"normal": "一般"})
    assert (named["discretion_tier"], named["tier"], named["penalty_basis"]) == ("一般", "normal", "《食品安全法》第一百二十四条")


def test_decision_tier_may_be_given_by_name_and_basis_must_cite_the_items_law():
    names = {"normal": "一般", "heaviest": "严重"}
    ok = d.decision_basis({"discretion_tier": "一般", "penalty_basis": "依据《食品安全法》第一百二十四条第一款"},
                          case_with_tier("normal"), "《食品安全法》第一百二十四条", names)
    assert ok["discretion_tier"] == "一般" and ok["source"] == "facts"
    with pytest.raises(DomainError) as err:
        d.decision_basis({"discretion_tier": "严重"}, case_with_tier("normal"), None, names)
    assert "“严重”" in str(err.value) and "“一般”" in str(err.value)
    with pytest.raises(DomainError) as err:
        d.decision_basis({"penalty_basis": "《产品质量法》第四十九条"}, case_with_tier("normal"), "《食品安全法》第一百二十四条")
    assert err.value.field == "facts.penalty_basis" and "未引用" in str(err.value)


def test_decision_tier_must_agree_with_the_case():
    with pytest.raises(DomainError) as err:
        d.decision_basis({"penalty_basis": "x", "discretion_tier": "heaviest"}, case_with_tier("normal"))
    assert err.value.field == "facts.discretion_tier" and "不一致" in str(err.value)
    same = d.decision_basis({"penalty_basis": "x", "discretion_tier": "normal"}, case_with_tier("normal"))
    assert same["source"] == "facts"


def test_decision_without_basis_or_tier_is_refused_naming_both():
    with pytest.raises(DomainError) as err:
        d.decision_basis({}, {"case": {"decisions": []}})
    assert "处罚依据（penalty_basis）" in str(err.value) and "裁量阶次（discretion_tier）" in str(err.value)
    assert d.decision_basis({"discretion_tier": "一般"}, None, item_basis="《某法》第1条")["penalty_basis"] == "《某法》第1条"


# ---- template catalog and plugin hooks ---------------------------------------------------------

def test_county_override_wins_then_plugin_then_builtin(tmp_path):
    plugin_file = tmp_path / "plugin.docx"
    plugin_file.write_bytes(b"plugin")
    (tmp_path / "county").mkdir()
    (tmp_path / "county" / "penalty_decision.docx").write_bytes(b"county-all")
    assert catalog.resolve("penalty_decision", "511322-scjg", {}, None).source == "builtin"
    plugins = {"penalty_decision": ("samr", str(plugin_file))}
    assert catalog.resolve("penalty_decision", "511322-scjg", plugins, None).data == b"plugin"
    found = catalog.resolve("penalty_decision", "511322-scjg", plugins, str(tmp_path / "county"))
    assert (found.source, found.data) == ("county", b"county-all")
    (tmp_path / "county" / "511322-scjg").mkdir()
    (tmp_path / "county" / "511322-scjg" / "penalty_decision.docx").write_bytes(b"county-dept")
    assert catalog.resolve("penalty_decision", "511322-scjg", plugins, str(tmp_path / "county")).data == b"county-dept"
    assert catalog.resolve("penalty_decision", "511322-sthj", plugins, str(tmp_path / "county")).data == b"county-all"
    assert catalog.resolve("../etc", "511322-scjg", {}, None) is None
    assert catalog.resolve("no_such_kind", "511322-scjg", {}, None) is None


class ThirdParty:
    """A department plugin with its own decision template and numbering."""

    def __init__(self, path: Path):
        self.path = path

    from plugins.hookspecs import hookimpl

    @hookimpl
    def zhifa_document_files(self, dept):
        return {"penalty_decision": str(self.path)} if dept.endswith("-cgj") else None

    @hookimpl
    def zhifa_document_number_prefix(self, dept, kind):
        return "综执罚" if dept.endswith("-cgj") and kind == "penalty_decision" else None


class Broken:
    from plugins.hookspecs import hookimpl

    @hookimpl
    def zhifa_document_files(self, dept):
        return {"penalty_decision": 42}

    @hookimpl
    def zhifa_document_number_prefix(self, dept, kind):
        return "营〔罚〕"


def test_plugins_supply_templates_and_prefixes(tmp_path):
    template = tmp_path / "cgj_decision.docx"
    template.write_bytes(to_bytes(build_template("行政处罚决定书", "{agency_name}\n行政处罚决定书\n{doc_number}\n\n城管\n")))
    host = build_plugin_manager(load_entrypoints=True)
    host.register(ThirdParty(template), "cgj-test")
    host.register(Broken(), "broken-test")
    files = host.document_files("511322-cgj")
    assert files["penalty_decision"] == ("cgj-test", str(template))
    assert files["service_receipt"][0] == "builtin.documents"  # the rest stay built-in
    assert host.document_files("511322-scjg")["penalty_decision"][0] == "builtin.documents"
    assert host.document_number_prefix("511322-cgj", "penalty_decision") == "综执罚"
    assert host.document_number_prefix("511322-scjg", "penalty_decision") == "市监罚"  # the samr plugin
    assert host.document_number_prefix("511322-sthj", "penalty_decision") is None
    failed = {(f.name, f.hook) for f in host.failures}
    assert {("broken-test", "zhifa_document_files"), ("broken-test", "zhifa_document_number_prefix")} <= failed


def test_doc_addressee_a_supervision_document_goes_to_the_supervised_departments_only():
    depts = ["511322-scjg", "511322-sthj"]
    assert d.addressees("supervision", "JD-1", "511322-sfj", None, depts) == depts
    assert d.addressees("supervision", "JD-1", "511322-sfj", "511322-sthj", depts) == ["511322-sthj"]
    assert d.addressees("supervision", "JD-1", "511322-scjg", None, depts) == []   # a department's own receipt
    assert d.addressees("case", "C-1", "511322-scjg", None, None) == []
    for args, code, field in ((("supervision", "JD-1", "511322-sfj", "511322-cgj", depts), "invalid_value", "addressee"),
                              (("supervision", "JD-1", "511322-sfj", None, None), "not_found", "subject_id"),
                              (("supervision", "JD-1", "511322-cgj", None, depts), "not_owner", "subject_id"),
                              (("supervision", "JD-1", "511322-scjg", "511322-sthj", depts), "invalid_value", "addressee"),
                              (("case", "C-1", "511322-scjg", "511322-sthj", None), "invalid_value", "addressee")):
        with pytest.raises(DomainError) as err:
            d.addressees(*args)
        assert (err.value.code, err.value.field) == (code, field), args


class ByCaseType:
    """A department plugin written for the hook with `subject` (numbers by the case type its fields name)."""
    from plugins.hookspecs import hookimpl

    @hookimpl
    def zhifa_document_number_prefix(self, dept, kind, subject):
        category = ((subject or {}).get("facts") or {}).get("case_category")
        if not dept.endswith("-yjj") or kind != "penalty_decision":
            return None
        if subject is not None:
            subject["facts"]["case_category"] = "changed"   # a plugin cannot change the document's fields
        return f"应急{category or '安'}罚"


class OldSignature:
    """A plugin written before the hook had `subject`: called with (dept, kind) as before."""
    from plugins.hookspecs import hookimpl

    @hookimpl
    def zhifa_document_number_prefix(self, dept, kind):
        return "旧罚" if dept.endswith("-old") and kind == "penalty_decision" else None


def test_the_number_prefix_hook_sees_the_subject_and_old_plugins_keep_working():
    host = build_plugin_manager(load_entrypoints=False)
    host.register(ByCaseType(), "by-case-type")
    host.register(OldSignature(), "old-signature")
    facts = {"case_category": "危"}
    subject = {"type": "case", "id": "511322-yjj-2026-0001", "facts": facts, "case": None}
    assert host.document_number_prefix("511322-yjj", "penalty_decision", subject) == "应急危罚"
    assert facts == {"case_category": "危"}
    assert host.document_number_prefix("511322-yjj", "penalty_decision") == "应急安罚"   # the usual one
    assert host.document_number_prefix("511322-old", "penalty_decision", subject) == "旧罚"
    assert host.document_number_prefix("511322-old", "penalty_decision") == "旧罚"
    assert host.failures == []
    # a prefix other than the usual one counts in a series of its own; the usual one as before
    assert d.counter_id("511322-yjj", "penalty_decision", 2026) == "511322-yjj|penalty_decision|2026"
    assert d.counter_id("511322-yjj", "penalty_decision", 2026, "营应急危罚") == "511322-yjj|penalty_decision|2026|营应急危罚"
