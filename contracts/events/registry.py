"""Registry ingress events: enforcement items (执法事项), discretion standards (裁量基准), leniency lists (四张清单).

Shapes and sizes only; the registry domain checks the rest (tier counts, ranges, windows) and
rejects with every reason.
"""
from __future__ import annotations

from contracts.events.personnel import AREAS
from contracts.fields import DATE, DEPT, NAME, SHORT, TEXT, opt, req
from contracts.model import EventContract

ITEM_CODE = {"type": "string", "regex": r"^[0-9A-Za-z][0-9A-Za-z_\-]{0,39}$", "maxlength": 40}
ITEM_NAME = {"type": "string", "minlength": 1, "maxlength": 300}
# The enforcement area (执法领域) an officer's credential must cover to act on the item, in the
# same code as credential `areas` (contracts/events/personnel.py), e.g. "market", "environment".
AREA = {**AREAS["schema"], "maxlength": 32}
CATEGORY = {"type": "string", "allowed": ["penalty", "coercion", "inspection", "levy", "licensing", "other"]}
DEPT_LIST = {"type": "list", "maxlength": 100, "schema": DEPT}
LEGAL_BASIS = {
    "type": "list", "maxlength": 30,
    "schema": {"type": "dict", "schema": {
        "law": req(NAME),
        "article": req({"type": "string", "minlength": 1, "maxlength": 100}),
    }},
}
AMOUNT = {"type": "number", "min": 0, "max": 1_000_000_000_000}
MULTIPLE = {"type": "number", "min": 0, "max": 1000}
TIER = {
    "type": "dict",
    "schema": {
        "tier": req({"type": "string", "regex": r"^[a-z][a-z0-9_]{0,31}$"}),
        "name": req({"type": "string", "minlength": 1, "maxlength": 20}),
        "conditions": req(TEXT, minlength=1),
        # exactly one of the two ranges
        "amount": req({"type": "dict", "excludes": "multiple",
                       "schema": {"min": req(AMOUNT), "max": req(AMOUNT)}}),
        "multiple": req({"type": "dict", "excludes": "amount",
                         "schema": {"min_multiple": req(MULTIPLE), "max_multiple": req(MULTIPLE)}}),
    },
}
ITEM_ATTRIBUTES = {
    "owning_dept": opt(DEPT),
    "cooperating_depts": opt(DEPT_LIST),
    "delegated_to_township": opt({"type": "boolean"}),
    "delegated_depts": opt(DEPT_LIST),
    "effective_to": opt(DATE),
    "document_no": opt(SHORT),
    # optional: an item without an area accepts a usable credential of any area
    "area": opt(AREA),
}

EXAMPLE_BASIS = [{"law": "《中华人民共和国食品安全法》", "article": "第一百二十四条第一款第（一）项"}]

CONTRACTS = [
    EventContract(
        type="item.published",
        version=1,
        owner="registry",
        doc=("A department published an enforcement item (执法事项) with its legal basis and, optionally, the "
             "enforcement area (执法领域) a credential must cover; owner defaults to the sender."),
        schema={
            "item_code": req(ITEM_CODE),
            "name": req(ITEM_NAME),
            "category": req(CATEGORY),
            # may be empty: an item without basis is recorded and raised as REG-NO-LEGAL-BASIS
            "legal_basis": req(LEGAL_BASIS),
            "effective_from": req(DATE),
            **ITEM_ATTRIBUTES,
        },
        example={
            "item_code": "330217001000",
            "name": "对用非食品原料生产食品、在食品中添加食品添加剂以外的化学物质等行为的行政处罚",
            "category": "penalty",
            "legal_basis": EXAMPLE_BASIS,
            "effective_from": "2024-03-01",
            "area": "market",
            "owning_dept": "511322-scjg",
            "cooperating_depts": ["511322-gaj"],
            "delegated_to_township": True,
            "delegated_depts": ["511322-jxz"],
            "document_no": "营市监发〔2024〕5号",
        },
    ),
    EventContract(
        type="item.amended",
        version=1,
        owner="registry",
        doc=("An enforcement item changed (动态调整) from effective_from; fields left out keep their value, "
             "an explicit null area clears it."),
        schema={
            "item_code": req(ITEM_CODE),
            "effective_from": req(DATE),
            "name": opt(ITEM_NAME, nullable=False),
            "category": opt(CATEGORY, nullable=False),
            "legal_basis": opt(LEGAL_BASIS, nullable=False),
            "reason": opt(TEXT),
            **ITEM_ATTRIBUTES,
        },
        example={
            "item_code": "330217001000",
            "effective_from": "2024-09-01",
            "legal_basis": [
                {"law": "《中华人民共和国食品安全法》", "article": "第一百二十四条第一款第（一）项"},
                {"law": "《中华人民共和国食品安全法实施条例》", "article": "第六十七条"},
            ],
            "delegated_to_township": False,
            "area": "market",
            "reason": "乡镇承接能力不足，收回赋权",
            "document_no": "营市监发〔2024〕21号",
        },
    ),
    EventContract(
        type="item.repealed",
        version=1,
        owner="registry",
        doc="An enforcement item was repealed (取消) with effect from effective_from.",
        schema={
            "item_code": req(ITEM_CODE),
            "effective_from": req(DATE),
            "reason": opt(TEXT),
            "document_no": opt(SHORT),
        },
        example={
            "item_code": "330217001000",
            "effective_from": "2025-01-01",
            "reason": "上位法修改，事项取消",
            "document_no": "营市监发〔2024〕40号",
        },
    ),
    EventContract(
        type="item.evaluated",
        version=1,
        owner="registry",
        doc="An item delegated to townships (赋权事项) was evaluated, with the conclusion keep/adjust/withdraw.",
        schema={
            "item_code": req(ITEM_CODE),
            "evaluated_on": req(DATE),
            "conclusion": req({"type": "string", "allowed": ["keep", "adjust", "withdraw"]}),
            "summary": opt(TEXT),
            "township_depts": opt(DEPT_LIST),
        },
        example={
            "item_code": "330217001000",
            "evaluated_on": "2024-11-20",
            "conclusion": "keep",
            "summary": "乡镇综合执法队承接能力满足要求，案件办理规范，继续赋权",
            "township_depts": ["511322-jxz"],
        },
    ),
    EventContract(
        type="standard.published",
        version=1,
        owner="registry",
        doc="A department published the discretion standard (裁量基准) of a penalty item, tiers lightest first.",
        schema={
            "item_code": req(ITEM_CODE),
            "effective_from": req(DATE),
            "effective_to": opt(DATE),
            "standard_no": opt(SHORT),
            "filed_on": opt(DATE),
            "legal_limit": req({"type": "dict", "schema": {
                "kind": req({"type": "string", "allowed": ["amount", "multiple"]}),
                "max": req({"type": "number", "min": 0, "max": 1_000_000_000_000}),
                "min": opt({"type": "number", "min": 0, "max": 1_000_000_000_000}),
                "max_only": req({"type": "boolean"}),
            }}),
            "tiers": req({"type": "list", "minlength": 1, "maxlength": 10, "schema": TIER}),
        },
        example={
            "item_code": "330217001000",
            "effective_from": "2024-07-01",
            "standard_no": "营市监规〔2024〕2号",
            "filed_on": "2024-07-20",
            "legal_limit": {"kind": "amount", "min": 50000, "max": 100000, "max_only": False},
            "tiers": [
                {"tier": "lightest", "name": "从轻", "conditions": "首次违法，货值金额不足二千元，主动消除危害后果",
                 "amount": {"min": 50000, "max": 60000}},
                {"tier": "lighter", "name": "较轻", "conditions": "货值金额二千元以上不足四千元，积极配合调查",
                 "amount": {"min": 60000, "max": 70000}},
                {"tier": "normal", "name": "一般", "conditions": "货值金额四千元以上不足六千元",
                 "amount": {"min": 70000, "max": 80000}},
                {"tier": "heavier", "name": "较重", "conditions": "货值金额六千元以上不足八千元，或者拒不配合调查",
                 "amount": {"min": 80000, "max": 90000}},
                {"tier": "heaviest", "name": "严重", "conditions": "货值金额八千元以上不足一万元，或者造成人身损害",
                 "amount": {"min": 90000, "max": 100000}},
            ],
        },
    ),
    EventContract(
        type="leniency_list.published",
        version=1,
        owner="registry",
        doc="A department published one leniency list (四张清单 or 涉企免罚); it replaces the previous list of that kind.",
        schema={
            "kind": req({"type": "string", "allowed": [
                "no_penalty", "mitigated_penalty", "lighter_penalty", "no_coercion", "enterprise_exemption"]}),
            "effective_from": req(DATE),
            "effective_to": opt(DATE),
            "list_no": opt(SHORT),
            "title": opt(SHORT),
            "entries": req({"type": "list", "maxlength": 300, "schema": {"type": "dict", "schema": {
                "item_code": req(ITEM_CODE),
                "conditions": req(TEXT, minlength=1),
                "basis": opt(SHORT),
            }}}),
        },
        example={
            "kind": "no_penalty",
            "effective_from": "2024-05-01",
            "list_no": "营市监发〔2024〕9号",
            "title": "营山县市场监管领域轻微违法行为不予处罚清单（2024年版）",
            "entries": [
                {"item_code": "330217001000",
                 "conditions": "初次违法，货值金额不足五百元，危害后果轻微并及时改正的",
                 "basis": "《中华人民共和国行政处罚法》第三十三条第一款"},
            ],
        },
    ),
]
