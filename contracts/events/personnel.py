"""Personnel contracts: agencies (执法主体), officers, credentials (执法证件), training.

Ingress facts carry the ids of their aggregate (`officer_id`, plus `credential_no` for credential
facts) and the date the action took effect; the envelope's `dept` is the reporting department.
Internal events are what the personnel service emits: `officer.changed` (a self-contained snapshot
for other services' projections). Findings have their own shared contracts (findings.py).
"""
from contracts.fields import CODE_LIST, DATE, DATETIME, DEPT, HOURS, ID, NAME, SHORT, TEXT, opt, req
from contracts.model import EventContract

# Credential numbers often start with a province abbreviation (川, 鄂, 鲁 …).
CREDENTIAL_NO = {"type": "string", "regex": r"^[0-9A-Za-z\u4e00-\u9fff][0-9A-Za-z\u4e00-\u9fff\-]{0,39}$",
                 "maxlength": 40}
AREAS = {**CODE_LIST, "minlength": 1, "schema": {"type": "string", "regex": r"^[a-z][a-z0-9_]{0,31}$"}}
REGIONS = {**CODE_LIST, "schema": {"type": "string", "regex": r"^[0-9]{6,12}$"}}
AGENCY_KIND = {"type": "string", "allowed": ["statutory", "authorised", "entrusted"]}
OFFICER_KIND = {"type": "string", "allowed": ["officer", "auxiliary", "supervisor"]}
OFFICER_STATUS = {"type": "string", "allowed": ["active", "inactive", "left"]}
ISSUER_LEVEL = {"type": "string", "allowed": ["state_council", "provincial", "municipal", "county"]}
CREDENTIAL_STATUS = {"type": "string", "allowed": ["not_issued", "not_yet_valid", "valid", "suspended",
                                                   "expired", "revoked", "cancelled"]}

OFFICER_REF = {"officer_id": req(ID)}
CREDENTIAL_REF = {"officer_id": req(ID), "credential_no": req(CREDENTIAL_NO)}
WINDOW = {"type": "dict", "schema": {"from": req(DATETIME, nullable=True), "to": req(DATETIME, nullable=True)}}


def _ingress(type_: str, doc: str, schema: dict, example: dict) -> EventContract:
    return EventContract(type=type_, version=1, owner="personnel", doc=doc, schema=schema, example=example,
                         direction="ingress", tags=("personnel",))


def _internal(type_: str, doc: str, schema: dict, example: dict, tags=("personnel",)) -> EventContract:
    return EventContract(type=type_, version=1, owner="personnel", doc=doc, schema=schema, example=example,
                         direction="internal", tags=tags)


INGRESS = [
    _ingress(
        "agency.registered",
        "执法主体登记或重述（法定机关/授权组织/受委托组织），含依据与县政府确认公布日期。",
        {
            "agency_id": req(ID), "name": req(NAME), "kind": req(AGENCY_KIND),
            "legal_basis": req({"type": "list", "minlength": 1, "maxlength": 20, "schema": SHORT}),
            "entrusted_by": opt(ID), "confirmed_on": opt(DATE), "published_on": opt(DATE),
        },
        {
            "agency_id": "A511322-SCJG", "name": "营山县市场监督管理局", "kind": "statutory",
            "legal_basis": ["《中华人民共和国行政处罚法》第十七条", "《市场监督管理行政处罚程序规定》第二条"],
            "entrusted_by": None, "confirmed_on": "2024-03-12", "published_on": "2024-03-15",
        },
    ),
    _ingress(
        "officer.registered",
        "执法人员、辅助人员或执法监督员登记（重复登记视为整体重述）。",
        {**OFFICER_REF, "name": req(NAME), "agency_id": req(ID), "kind": req(OFFICER_KIND),
         "status": opt(OFFICER_STATUS)},
        {"officer_id": "511322-scjg-0007", "name": "李明", "agency_id": "A511322-SCJG", "kind": "officer",
         "status": "active"},
    ),
    _ingress(
        "officer.updated",
        "人员信息变更：姓名、所属主体、类别或在岗状态（只带变更的字段）。",
        {**OFFICER_REF, "name": opt(NAME), "agency_id": opt(ID), "kind": opt(OFFICER_KIND),
         "status": opt(OFFICER_STATUS), "reason": opt(SHORT)},
        {"officer_id": "511322-scjg-0007", "status": "left", "reason": "调离执法岗位"},
    ),
    _ingress(
        "officer.transfer_requested",
        "调动第一步：人员所属单位申请将其调往另一部门（to_dept）；调入单位确认（officer.transfer_accepted）后生效。",
        {**OFFICER_REF, "to_dept": req(DEPT), "requested_on": opt(DATE), "reason": opt(SHORT)},
        {"officer_id": "511322-scjg-0007", "to_dept": "511322-zhzf", "requested_on": "2024-08-01",
         "reason": "综合行政执法改革，人员划转"},
    ),
    _ingress(
        "officer.transfer_accepted",
        "调动第二步：调入单位确认接收，自 effective_on 当日起由调入单位管理（也可由县司法局带 to_dept 直接确认）。",
        {**OFFICER_REF, "from_dept": opt(DEPT), "to_dept": opt(DEPT), "effective_on": req(DATE),
         "agency_id": opt(ID), "reason": opt(SHORT)},
        {"officer_id": "511322-scjg-0007", "from_dept": "511322-scjg", "effective_on": "2024-08-15",
         "agency_id": "A511322-ZHZF"},
    ),
    _ingress(
        "credential.issued",
        "执法证件发放：证号、发证机关及层级、执法领域与区域、有效期。",
        {
            **CREDENTIAL_REF, "issuer": req(NAME), "issuer_level": req(ISSUER_LEVEL), "areas": req(AREAS),
            "regions": opt(REGIONS), "issued_on": req(DATE), "valid_from": req(DATE), "valid_to": req(DATE),
        },
        {"officer_id": "511322-scjg-0007", "credential_no": "川A5113220007", "issuer": "四川省人民政府",
         "issuer_level": "provincial", "areas": ["market"], "regions": ["511322"],
         "issued_on": "2024-01-10", "valid_from": "2024-01-10", "valid_to": "2029-01-09"},
    ),
    _ingress(
        "credential.suspended",
        "执法证件暂扣，自 suspended_on 当日起生效。",
        {**CREDENTIAL_REF, "suspended_on": req(DATE), "reason": req(SHORT)},
        {"officer_id": "511322-scjg-0007", "credential_no": "川A5113220007", "suspended_on": "2024-06-03",
         "reason": "涉嫌违法违纪，接受调查期间暂扣"},
    ),
    _ingress(
        "credential.restored",
        "暂扣的执法证件恢复使用，自 restored_on 当日起生效。",
        {**CREDENTIAL_REF, "restored_on": req(DATE), "reason": opt(SHORT)},
        {"officer_id": "511322-scjg-0007", "credential_no": "川A5113220007", "restored_on": "2024-07-15",
         "reason": "调查结束，未发现违法违纪"},
    ),
    _ingress(
        "credential.revoked",
        "执法证件收回（终局），自 revoked_on 当日起失效。",
        {**CREDENTIAL_REF, "revoked_on": req(DATE), "reason": req(SHORT)},
        {"officer_id": "511322-scjg-0007", "credential_no": "川A5113220007", "revoked_on": "2024-09-01",
         "reason": "年度考核不合格"},
    ),
    _ingress(
        "credential.cancelled",
        "执法证件注销（终局），如退休、调离执法岗位。",
        {**CREDENTIAL_REF, "cancelled_on": req(DATE), "reason": req(SHORT)},
        {"officer_id": "511322-scjg-0007", "credential_no": "川A5113220007", "cancelled_on": "2025-02-28",
         "reason": "调离执法岗位"},
    ),
    _ingress(
        "credential.filed",
        "国务院部门制发的执法证件向县司法局备案，备案前不得在本行政区域内使用。",
        {**CREDENTIAL_REF, "filed_on": req(DATE), "filed_with": opt(NAME), "filing_no": opt(SHORT)},
        {"officer_id": "511322-sthj-0003", "credential_no": "HB13000000215", "filed_on": "2024-05-20",
         "filed_with": "营山县司法局", "filing_no": "营司证备〔2024〕12号"},
    ),
    _ingress(
        "training.completed",
        "执法人员完成一次培训，计入 completed_on 所在年度的学时。",
        {**OFFICER_REF, "completed_on": req(DATE), "hours": req(HOURS, min=0.5, max=200), "topic": req(SHORT),
         "organiser": opt(NAME)},
        {"officer_id": "511322-scjg-0007", "completed_on": "2024-05-16", "hours": 8,
         "topic": "《行政执法监督条例》专题培训", "organiser": "营山县司法局"},
    ),
]

CHANGED_CREDENTIAL = {
    "type": "dict",
    "schema": {
        "number": req(CREDENTIAL_NO), "areas": req(AREAS), "regions": req(REGIONS),
        "issuer_level": req(ISSUER_LEVEL), "filing_required": req({"type": "boolean"}),
        "filed_at": req(DATETIME, nullable=True), "valid_from": req(DATE), "valid_to": req(DATE),
        "ended_as": req({"type": "string", "allowed": ["revoked", "cancelled"]}, nullable=True),
        "status": req(CREDENTIAL_STATUS),
        # since 2026-11: what a consumer needs to say *why* a credential did not qualify, with dates
        "issuer": opt(NAME), "issued_at": opt(DATETIME, nullable=True), "ended_at": opt(DATETIME, nullable=True),
        "end_reason": opt(SHORT, nullable=True),
        "suspensions": opt({"type": "list", "maxlength": 100, "schema": {"type": "dict", "schema": {
            "from": req(DATETIME), "to": req(DATETIME, nullable=True), "reason": opt(SHORT, nullable=True)}}}),
        "usable": req({"type": "list", "maxlength": 100, "schema": WINDOW}),
    },
}

OFFICER_CHANGED = _internal(
    "officer.changed",
    "人员快照（version 递增）：kind=officer 且 T 落在 active 与某证件 usable 窗口内、领域含 X 时，可在 T 于 X 执法。",
    {
        **OFFICER_REF, "dept": req(DEPT), "name": req(NAME, nullable=True), "agency_id": req(ID, nullable=True),
        "kind": req(OFFICER_KIND, nullable=True), "status": req(OFFICER_STATUS, nullable=True),
        "active": req({"type": "list", "maxlength": 100, "schema": WINDOW}),
        "version": req({"type": "integer", "min": 1}), "as_of": req(DATETIME),
        "credentials": req({"type": "list", "maxlength": 50, "schema": CHANGED_CREDENTIAL}),
        "statuses": opt({"type": "list", "maxlength": 200, "schema": {"type": "dict", "schema": {
            "since": req(DATETIME), "status": req(OFFICER_STATUS)}}}),
    },
    {
        "officer_id": "511322-scjg-0007", "dept": "511322-scjg", "name": "李明", "agency_id": "A511322-SCJG",
        "kind": "officer", "status": "active",
        "active": [{"from": None, "to": None}], "version": 3, "as_of": "2024-07-20T09:00:00+08:00",
        "credentials": [{
            "number": "川A5113220007", "areas": ["market"], "regions": ["511322"], "issuer_level": "provincial",
            "filing_required": False, "filed_at": None, "valid_from": "2024-01-10", "valid_to": "2029-01-09",
            "ended_as": None, "status": "valid",
            "usable": [{"from": "2024-01-10T00:00:00+08:00", "to": "2024-06-03T00:00:00+08:00"},
                       {"from": "2024-07-15T00:00:00+08:00", "to": "2029-01-10T00:00:00+08:00"}],
        }],
    },
)

CONTRACTS = [*INGRESS, OFFICER_CHANGED]
