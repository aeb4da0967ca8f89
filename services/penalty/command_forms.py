"""What each 网上办案 command takes, for forms (`case_commands` query, `GET /api/v1/case-commands`).

Derived from the two things `act` checks a command against, never written down a second time:
- the strict domain command (`COMMANDS` in service.py): which parameters it accepts (keyword-only,
  minus those the service supplies), which are required (no default), their defaults, whether it
  can create a case (it takes `dept`), and the one fact type it issues (the `case.*` literal it
  passes to `_issue`, read from the function's code);
- the event contract of that fact type (contracts/events/penalty.py): each parameter's type, the
  allowed values, the pattern, lengths and bounds, the fields of a nested object.
Only the Chinese labels (of parameters and of vocabulary values) are written here; a unit test
checks that every parameter and every allowed value has one.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Mapping

from contracts.catalog import load_contracts
from contracts.fields import DATETIME
from services.penalty.domain import case as c

AT = "at"                                             # the command's time: the envelope's occurred_at

PARAM_LABELS = {
    "at": "操作时间", "item_code": "执法事项编码", "party": "当事人", "procedure": "程序类型", "case_no": "立案编号",
    "source_kind": "案件来源", "discovered_at": "发现线索时间", "summary": "简要案情", "complex": "复杂案件",
    "major_public_interest": "涉及重大公共利益", "filing_extension_approved": "立案期限已批准延长",
    "act_kind": "执法行为类型", "officers": "执法人员", "auxiliaries": "辅助人员", "av_recorded": "全程音像记录",
    "av_ref": "音像记录编号", "text": "情况说明", "measures": "涉案数额", "kind": "检验检测类型", "report_ref": "报告编号",
    "days": "延长天数", "approved": "已批准", "approver": "批准人", "reason": "理由", "hearing_right": "告知听证权利",
    "proposed_kinds": "拟处罚种类", "proposed_fine": "拟罚款金额（元）", "hearing_at": "听证时间", "place": "听证地点",
    "outcome": "听证结果", "passed": "审核通过", "reviewer": "审核人", "opinion": "审核意见", "participants": "参加人员",
    "conclusion": "讨论结论", "decision_no": "决定书文号", "kinds": "处罚种类", "act_code": "违法行为编码",
    "fine_amount": "罚款金额（元）", "confiscation_amount": "没收金额（元）", "tier": "裁量阶次",
    "publication_exempt": "依法不予公示", "hearing_waived": "当事人书面放弃听证", "paid_on_spot": "当场缴纳",
    "method": "方式", "served_at": "送达生效时间", "amount": "缴款金额（元）", "late_fee": "加处罚款（元）",
    "receipt_no": "缴款票据号", "archive_no": "档案号", "url": "公示网址", "by": "机关", "filing_no": "备案编号",
    "police_unit": "受移送公安机关", "suspected_crime": "涉嫌罪名", "handover_id": "移送案件编号",
}
# parameters whose meaning depends on the command
COMMAND_PARAM_LABELS = {
    ("close", "reason"): "结案原因", ("serve", "method"): "送达方式", ("execute", "method"): "执行方式",
    ("revoke_decision", "by"): "撤销机关", ("change_decision", "by"): "变更机关",
}
PARTY_FIELD_LABELS = {"type": "当事人类型", "id": "当事人证件号码", "name": "当事人名称"}  # 证件号码: 统一社会信用代码或身份证号
VALUE_LABELS = {
    c.PENALTY_KINDS: {"warning": "警告", "criticism": "通报批评", "fine": "罚款", "confiscation": "没收违法所得、没收非法财物",
                      "licence_suspension": "暂扣许可证件", "qualification_lowered": "降低资质等级",
                      "licence_revocation": "吊销许可证件", "business_restricted": "限制开展生产经营活动",
                      "production_stopped": "责令停产停业", "closure": "责令关闭", "practice_restricted": "限制从业",
                      "detention": "行政拘留", "other": "其他"},
    c.ACT_KINDS: {"on_site": "现场检查", "inspection": "检查", "evidence": "调查取证", "inquiry": "询问",
                  "sampling": "抽样取证", "seizure": "查封扣押", "forced_demolition": "强制拆除",
                  "forced_execution": "强制执行", "other": "其他"},
    c.PARTY_TYPES: {"person": "自然人", "org": "法人或其他组织"},
    c.PROCEDURES: {"normal": "普通程序", "simple": "简易程序"},
    c.SOURCE_KINDS: {"inspection": "监督检查发现", "complaint": "投诉举报", "referral": "移送", "monitoring": "技术监控",
                     "other": "其他"},
    c.TESTING_KINDS: {"testing": "检测", "inspection": "检验", "quarantine": "检疫", "appraisal": "鉴定"},
    c.HEARING_OUTCOMES: {"held": "如期举行", "withdrawn": "当事人撤回申请", "absent": "当事人无正当理由未到场"},
    c.SERVICE_METHODS: {"direct": "直接送达", "lodged": "留置送达", "post": "邮寄送达", "electronic": "电子送达",
                        "agent": "委托送达", "public_notice": "公告送达"},
    c.EXECUTION_METHODS: {"voluntary": "当事人自觉履行", "forced": "行政强制执行", "court": "申请人民法院强制执行"},
    c.REVOKED_BY: {"self": "本机关", "reconsideration": "行政复议机关", "court": "人民法院", "superior": "上级机关"},
    c.CLOSE_REASONS: {"executed": "执行完毕", "no_penalty": "不予行政处罚", "revoked": "决定被撤销", "terminated": "终止调查",
                      "transferred": "移送其他机关", "other": "其他"},
}


def issued_type(fn: Callable) -> str:
    """The fact type a strict domain command issues: the one `case.*` literal in its code."""
    found = [k for k in fn.__code__.co_consts if isinstance(k, str) and k in c.EVENT_LABELS]
    if len(found) != 1:
        raise ValueError(f"{fn.__name__}: cannot tell which fact it issues ({found})")
    return found[0]


def _values(allowed: list) -> dict[str, str]:
    labels = VALUE_LABELS.get(tuple(allowed))
    if labels is None:
        raise ValueError(f"no Chinese labels for the values {allowed}")
    return labels


def _field(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A cerberus field definition -> the form's description of the value (type, enum, pattern, bounds)."""
    if rule.get("regex") == DATETIME["regex"]:
        return {"type": "date-time"}
    kind = rule.get("type")
    out: dict[str, Any] = {}
    if kind == "string":
        out["type"] = "string"
        if "allowed" in rule:
            out["enum"] = list(rule["allowed"])
            out["enum_labels"] = _values(rule["allowed"])
        if "regex" in rule:
            out["pattern"] = rule["regex"]
        for src, dst in (("maxlength", "max_length"), ("minlength", "min_length")):
            if src in rule:
                out[dst] = rule[src]
    elif kind in ("integer", "number", "boolean"):
        out["type"] = kind
        for src, dst in (("min", "minimum"), ("max", "maximum")):
            if src in rule:
                out[dst] = rule[src]
    elif kind == "list":
        out.update(type="array", items=_field(rule.get("schema", {"type": "string"})))
        if "maxlength" in rule:
            out["max_items"] = rule["maxlength"]
    elif kind == "dict" and "schema" in rule:
        out.update(type="object", fields=[{"name": name, "label": PARTY_FIELD_LABELS[name],
                                           "required": bool(sub.get("required")), **_field(sub)}
                                          for name, sub in rule["schema"].items()])
    elif kind == "dict":  # name -> value (涉案数额: sales_amount -> 8600)
        out.update(type="map", keys=_field(rule.get("keysrules", {"type": "string"})),
                   values=_field(rule.get("valuesrules", {"type": "string"})))
    else:
        raise ValueError(f"no form type for {rule}")
    return out


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def describe(name: str, fn: Callable, contracts: Mapping[str, Mapping[str, Any]], supplied: frozenset) -> dict[str, Any]:
    """One command: its fact type and title, whether it can create a case, its parameters in order."""
    fact_type = issued_type(fn)
    schema = contracts[fact_type]
    signature = inspect.signature(fn)
    params = []
    for pname, p in signature.parameters.items():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY or pname in supplied:
            continue
        if pname == AT:
            spec = {"type": "date-time"}
        elif pname in schema:
            spec = _field(schema[pname])
        else:
            raise ValueError(f"{name}: parameter {pname} is not a field of the contract of {fact_type}")
        required = p.default is inspect.Parameter.empty
        entry = {"name": pname, "label": COMMAND_PARAM_LABELS.get((name, pname), PARAM_LABELS[pname]),
                 "required": required and pname != AT, **spec}
        default = _plain(p.default)
        if not required and default not in (None, (), [], "") and pname != AT:
            entry["default"] = default
        params.append(entry)
    return {"command": name, "title": c.EVENT_LABELS[fact_type], "event_type": fact_type,
            "creates_case": "dept" in signature.parameters, "params": params}


@functools.lru_cache(maxsize=1)
def _contracts() -> dict[str, dict[str, Any]]:
    return {k.type: k.schema for k in load_contracts() if k.owner == "penalty" and k.version == 1}


def command_forms(commands: Mapping[str, Callable], supplied: frozenset) -> list[dict[str, Any]]:
    """Every command (`supplied`: the parameters the service fills in), in lifecycle order of their facts."""
    contracts = _contracts()
    out = [describe(name, fn, contracts, supplied) for name, fn in commands.items()]
    return sorted(out, key=lambda d: c.TYPE_ORDER[d["event_type"]])
