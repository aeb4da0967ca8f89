"""Findings (监督发现): the one shape every service emits as `finding.raised` / `finding.resolved`.

The payload is `services.common.findings.Finding.to_payload()`; a resolution repeats the raised
payload with the new `as_of`.
"""
from contracts.fields import DATETIME, DEPT, TEXT, req
from contracts.model import EventContract

SEVERITY = {"type": "string", "allowed": ["info", "warning", "serious", "critical"]}


def _internal(type_: str, doc: str, schema: dict, example: dict) -> EventContract:
    return EventContract(type=type_, version=1, owner="any", doc=doc, schema=schema, example=example,
                         direction="internal", tags=("findings",))


FINDING_SCHEMA = {
    "finding_key": req({"type": "string", "minlength": 1, "maxlength": 240}),
    "rule_id": req({"type": "string", "regex": r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$", "maxlength": 48}),
    "severity": req(SEVERITY), "dept": req(DEPT),
    "subject_type": req({"type": "string", "regex": r"^[a-z][a-z_]{0,39}$"}),
    "subject_id": req({"type": "string", "minlength": 1, "maxlength": 128}),
    "as_of": req(DATETIME),
    "evidence": req({"type": "dict", "maxlength": 30, "keysrules": {"type": "string", "maxlength": 64}}),
    "message": req(TEXT),
}
FINDING_EXAMPLE = {
    "finding_key": "PER-CRED-UNFILED:credential:HB13000000215", "rule_id": "PER-CRED-UNFILED",
    "severity": "warning", "dept": "511322-sthj", "subject_type": "credential", "subject_id": "HB13000000215",
    "as_of": "2024-04-02T08:00:00+08:00",
    "evidence": {"officer_id": "511322-sthj-0003", "issuer": "生态环境部", "issued_on": "2024-03-28"},
    "message": "王芳（511322-sthj-0003）持有的国务院部门制发证件 HB13000000215（生态环境部）尚未向县司法局备案，"
               "备案前不得在本行政区域内使用",
}
FINDING_CONTRACTS = [
    _internal("finding.raised", "监督发现：某规则对某对象首次命中（同一 finding_key 不重复发出）。",
              FINDING_SCHEMA, FINDING_EXAMPLE),
    _internal("finding.resolved", "监督发现消除：重新评估时该 finding_key 不再命中。",
              FINDING_SCHEMA, {**FINDING_EXAMPLE, "as_of": "2024-05-20T08:00:00+08:00"}),
]

CONTRACTS = FINDING_CONTRACTS
