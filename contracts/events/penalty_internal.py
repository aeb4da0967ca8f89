"""Penalty internal events: what the penalty service emits for other services' projections.

`case.changed` is a small summary of one penalty case, sent when it changes (the kernel drops
unchanged ones): what the handover service (行刑衔接) needs to judge 以罚代刑 and a penalty that
continues after a transfer — the item and its legal basis, the measures (涉案数额), the current
decision, payments and transfers to the police. Not a full case record (that is read through the
API); no party identity (personal data stays in penalty).
"""
from contracts.fields import DATETIME, DEPT, ID, MONEY, SHORT, opt, req
from contracts.model import EventContract
from services.penalty.domain.case import PENALTY_KINDS

KINDS = {"type": "list", "maxlength": len(PENALTY_KINDS), "schema": {"type": "string", "allowed": list(PENALTY_KINDS)}}
BASIS = {"type": "list", "maxlength": 30, "schema": {"type": "dict", "schema": {
    "law": req({"type": "string", "maxlength": 100}),
    "article": req({"type": "string", "maxlength": 100}),
}}}
MEASURES = {"type": "dict", "maxlength": 20, "keysrules": {"type": "string", "regex": r"^[a-z][a-z0-9_]{0,39}$"},
            "valuesrules": MONEY}

CONTRACTS = [
    EventContract(
        type="case.changed", version=1, owner="penalty", direction="internal", tags=("penalty", "handover"),
        doc="A penalty case's handover-relevant summary changed (item, legal basis, measures, decision, payments, "
            "transfers to the police); `revision` grows with every fact of the case.",
        schema={
            "case_id": req(ID), "dept": req(DEPT), "revision": req({"type": "integer", "min": 0}),
            "as_of": req(DATETIME),
            "item_code": opt(ID), "legal_basis": opt(BASIS), "measures": opt(MEASURES),
            "decision": opt({"type": "dict", "schema": {
                "decision_no": opt(SHORT), "decided_at": req(DATETIME), "kinds": req(KINDS),
                "fine_amount": opt(MONEY), "revoked": req({"type": "boolean"}),
            }}),
            "payments": opt({"type": "list", "maxlength": 200, "schema": {"type": "dict", "schema": {
                "at": req(DATETIME), "amount": req(MONEY)}}}),
            "transferred_at": opt({"type": "list", "maxlength": 20, "schema": DATETIME}),
        },
        example={
            "case_id": "511322-scjg-2026-0042", "dept": "511322-scjg", "revision": 9,
            "as_of": "2026-05-08T15:00:00+08:00", "item_code": "scjg-cpzlf-049",
            "legal_basis": [{"law": "《中华人民共和国产品质量法》", "article": "第五十条"}],
            "measures": {"sales_amount": 68000},
            "decision": {"decision_no": "营市监罚〔2026〕42号", "decided_at": "2026-05-06T10:00:00+08:00",
                         "kinds": ["fine", "confiscation"], "fine_amount": 136000, "revoked": False},
            "payments": [{"at": "2026-05-08T14:30:00+08:00", "amount": 136000}],
            "transferred_at": [],
        },
    ),
]
