"""Registry internal events: what the registry service emits for other services' projections.

`item.changed` carries the whole time line of one item (every version and every accepted
discretion standard with their windows), so a consumer such as penalty can answer "does dept D
hold item C at T, with a legal basis?" and "what is the range of tier X of item C at T?" from its
own projection, without RPC. Ingress facts are in registry.py.
"""
from contracts.events.registry import AREA, CATEGORY, DEPT_LIST, ITEM_CODE, ITEM_NAME
from contracts.fields import DATE, DATETIME, DEPT, SHORT, opt, req
from contracts.model import EventContract

# Unlike the ingress contract, law/article may be empty here: an incomplete basis is a fact the
# registry records (and raises REG-NO-LEGAL-BASIS for), not something to hide from consumers.
BASIS = {"type": "list", "maxlength": 30, "schema": {"type": "dict", "schema": {
    "law": req({"type": "string", "maxlength": 100}),
    "article": req({"type": "string", "maxlength": 100}),
}}}
BOUND = {"type": "number", "min": 0, "max": 1_000_000_000_000}
RANGE_KIND = {"type": "string", "allowed": ["amount", "multiple"]}

VERSION = {"type": "dict", "schema": {
    "version": req({"type": "integer", "min": 1}),
    "change": req({"type": "string", "allowed": ["published", "amended", "repealed"]}),
    "name": req(ITEM_NAME),
    "category": req(CATEGORY),
    "owning_dept": req(DEPT),
    "cooperating_depts": req(DEPT_LIST),
    "delegated_to_township": req({"type": "boolean"}),
    "delegated_depts": req(DEPT_LIST),
    "legal_basis": req(BASIS),
    "effective_from": req(DATE),
    "effective_to": req(DATE, nullable=True),
    "repealed": req({"type": "boolean"}),
    "document_no": req(SHORT),
    # null (or absent, from a registry older than the field) = no area recorded: any area
    "area": opt(AREA),
}}

TIER = {"type": "dict", "schema": {
    "tier": req({"type": "string", "maxlength": 32}),
    "name": req({"type": "string", "maxlength": 32}),
    "kind": req(RANGE_KIND),
    "min": req(BOUND),
    "max": req(BOUND),
}}

STANDARD = {"type": "dict", "schema": {
    "standard_no": req(SHORT),
    "dept": req(DEPT),
    "effective_from": req(DATE),
    "effective_to": req(DATE, nullable=True),
    "published_at": req(DATETIME),
    "legal_limit": req({"type": "dict", "schema": {
        "kind": req(RANGE_KIND),
        "max": req(BOUND),
        "min": opt(BOUND),
        "max_only": req({"type": "boolean"}),
    }}),
    "tiers": req({"type": "list", "maxlength": 10, "schema": TIER}),
}}

ITEM_CHANGED = EventContract(
    type="item.changed",
    version=1,
    owner="registry",
    direction="internal",
    tags=("registry",),
    doc=("事项全量快照（revision 递增，保留最大者）：T 日所在版本未废止且 owning_dept=D，或已赋权乡镇且 D 在 "
         "delegated_depts 中，则 D 在 T 日持有该事项；依据完整指每条 legal_basis 的 law 与 article 均非空；"
         "T 日的裁量基准是 effective_from≤T 的最后一份（按 effective_from、published_at），且其 effective_to 未过；"
         "T 日所在版本的 area 为执法领域（证件 areas 须含之），为空则不限领域。"),
    schema={
        "item_code": req(ITEM_CODE),
        "revision": req({"type": "integer", "min": 1}),
        "as_of": req(DATETIME),
        "dept": req(DEPT),
        "versions": req({"type": "list", "maxlength": 1000, "schema": VERSION}),
        "standards": req({"type": "list", "maxlength": 1000, "schema": STANDARD}),
    },
    example={
        "item_code": "330217001000",
        "revision": 3,
        "as_of": "2024-09-02T09:00:00+08:00",
        "dept": "511322-scjg",
        "versions": [
            {"version": 1, "change": "published",
             "name": "对用非食品原料生产食品、在食品中添加食品添加剂以外的化学物质等行为的行政处罚",
             "category": "penalty", "owning_dept": "511322-scjg", "cooperating_depts": ["511322-gaj"],
             "delegated_to_township": True, "delegated_depts": ["511322-jxz"],
             "legal_basis": [{"law": "《中华人民共和国食品安全法》", "article": "第一百二十四条第一款第（一）项"}],
             "effective_from": "2024-03-01", "effective_to": "2024-08-31", "repealed": False,
             "document_no": "营市监发〔2024〕5号", "area": "market"},
            {"version": 2, "change": "amended",
             "name": "对用非食品原料生产食品、在食品中添加食品添加剂以外的化学物质等行为的行政处罚",
             "category": "penalty", "owning_dept": "511322-scjg", "cooperating_depts": ["511322-gaj"],
             "delegated_to_township": False, "delegated_depts": ["511322-jxz"],
             "legal_basis": [{"law": "《中华人民共和国食品安全法》", "article": "第一百二十四条第一款第（一）项"}],
             "effective_from": "2024-09-01", "effective_to": None, "repealed": False,
             "document_no": "营市监发〔2024〕21号", "area": "market"},
        ],
        "standards": [
            {"standard_no": "营市监规〔2024〕2号", "dept": "511322-scjg", "effective_from": "2024-07-01",
             "effective_to": None, "published_at": "2024-06-20T10:00:00+08:00",
             "legal_limit": {"kind": "amount", "min": 50000, "max": 100000, "max_only": False},
             "tiers": [
                 {"tier": "lightest", "name": "从轻", "kind": "amount", "min": 50000, "max": 60000},
                 {"tier": "lighter", "name": "较轻", "kind": "amount", "min": 60000, "max": 70000},
                 {"tier": "normal", "name": "一般", "kind": "amount", "min": 70000, "max": 80000},
                 {"tier": "heavier", "name": "较重", "kind": "amount", "min": 80000, "max": 90000},
                 {"tier": "heaviest", "name": "严重", "kind": "amount", "min": 90000, "max": 100000},
             ]},
        ],
    },
)

CONTRACTS = [ITEM_CHANGED]
