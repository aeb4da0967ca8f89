"""The 网上办案 form descriptions (`case_commands`) are derived from the commands and contracts `act` uses."""
from __future__ import annotations

import re

import pytest

from contracts.catalog import load_contracts
from services.penalty.command_forms import command_forms, issued_type
from services.penalty.domain import case as c
from services.penalty.service import COMMANDS, SUPPLIED, _command_kwargs

FORMS = {f["command"]: f for f in command_forms(COMMANDS, SUPPLIED)}
PARAMS = {(f["command"], p["name"]): p for f in FORMS.values() for p in f["params"]}


def test_every_command_is_described_with_its_fact_type_and_chinese_title():
    assert set(FORMS) == set(COMMANDS)
    assert FORMS["file_case"]["event_type"] == "case.filed" and FORMS["file_case"]["title"] == "立案"
    assert FORMS["decide"]["event_type"] == "case.decided" and FORMS["serve"]["event_type"] == "case.served"
    assert [f["command"] for f in FORMS.values() if f["creates_case"]] == ["file_case", "decide_on_spot"]
    for f in FORMS.values():
        assert re.search(r"[\u4e00-\u9fff]", f["title"]), f


def test_parameters_follow_the_signature_and_the_contract():
    # required: the command has no default (the service answers missing_param otherwise)
    assert PARAMS[("file_case", "item_code")]["required"] and not PARAMS[("file_case", "case_no")]["required"]
    assert PARAMS[("decide", "party")]["required"] and PARAMS[("decide", "kinds")]["required"]
    assert not PARAMS[("file_case", "at")]["required"] and PARAMS[("file_case", "at")]["type"] == "date-time"
    # types, allowed values and patterns from the contract
    item = PARAMS[("file_case", "item_code")]
    assert item["type"] == "string" and item["pattern"] == load_contracts_schema("case.filed")["item_code"]["regex"]
    kinds = PARAMS[("decide", "kinds")]
    assert kinds["type"] == "array" and kinds["items"]["enum"] == list(c.PENALTY_KINDS)
    assert kinds["items"]["enum_labels"]["fine"] == "罚款"
    party = {f["name"]: f for f in PARAMS[("decide", "party")]["fields"]}
    assert party["type"]["enum"] == ["person", "org"] and party["id"]["pattern"] == "^[0-9A-Za-z]{6,30}$"
    days = PARAMS[("extend", "days")]
    assert (days["type"], days["minimum"], days["maximum"], days["required"]) == ("integer", 1, 365, True)
    assert PARAMS[("record_act", "measures")]["type"] == "map"
    assert PARAMS[("close", "reason")]["label"] == "结案原因" and PARAMS[("suspend", "reason")]["type"] == "string"
    assert PARAMS[("file_case", "procedure")]["default"] == "normal"
    assert PARAMS[("serve", "served_at")]["type"] == "date-time"


def load_contracts_schema(type_: str) -> dict:
    return next(k.schema for k in load_contracts() if k.type == type_)


def test_every_parameter_and_value_has_a_chinese_label():
    def labels(spec):
        yield spec.get("label", "中")
        yield from (spec.get("enum_labels") or {}).values()
        if spec.get("items"):
            yield from labels(spec["items"])
        for f in spec.get("fields", ()):
            yield from labels(f)

    for key, p in PARAMS.items():
        for label in labels(p):
            assert re.search(r"[\u4e00-\u9fff]", label), (key, label)
        assert set((p.get("enum_labels") or {})) == set(p.get("enum") or ()), key


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_described_parameters_are_exactly_those_the_service_accepts(command):
    names = {p["name"] for p in FORMS[command]["params"]}
    required = {p["name"] for p in FORMS[command]["params"] if p["required"]}
    # every described parameter is accepted (unknown_param otherwise) ...
    for name in names:
        try:
            _command_kwargs(command, COMMANDS[command], {name: None}, "511322-scjg", c.parse_time("2026-01-05T09:00:00+08:00"))
        except Exception as exc:  # only a missing required one may be refused
            assert getattr(exc, "code", None) == "missing_param", (command, name, exc)
    # ... and without the required ones the service refuses, naming one of them
    if required:
        with pytest.raises(Exception) as err:
            _command_kwargs(command, COMMANDS[command], {}, "511322-scjg", c.parse_time("2026-01-05T09:00:00+08:00"))
        assert err.value.field in required


def test_the_fact_type_is_read_from_the_command_itself():
    assert issued_type(c.record_payment) == "case.paid"
    with pytest.raises(ValueError):
        issued_type(lambda: None)
