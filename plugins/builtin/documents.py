"""Document templates (文书) as a built-in plugin, and the one pure renderer.

Templates are `str.format` text with named fields only; `render_document` checks every field
before formatting, so a missing value is reported all at once by name (with its Chinese label),
never as a half-filled document. Rendering to DOCX/PDF is the documents service's job; this
module produces the text.
"""
from __future__ import annotations

import copy
import re
import string
from pathlib import Path
from typing import Any, Mapping

from plugins.hookspecs import hookimpl

_SEAL = "\n\n{agency_name}（印章）\n{issued_on}\n"

TEMPLATES: dict[str, dict[str, str]] = {
    "filing_approval": {
        "title": "立案审批表",
        "body": (
            "{agency_name}\n立案审批表\n{doc_number}\n\n"
            "案件来源：{case_source}\n"
            "发现线索（收到材料）日期：{discovered_on}\n"
            "当事人：{party_name}\n"
            "统一社会信用代码（身份证件号码）：{party_id}\n"
            "住所（住址）：{party_address}\n"
            "案由：{cause}\n"
            "简要案情：{summary}\n"
            "立案依据：{legal_basis}\n"
            "承办人意见：{officer_opinion}\n"
            "承办人：{officers}　　日期：{opinion_on}\n"
            "负责人审批意见：{approver_opinion}\n"
            "负责人：{approver}　　日期：{approved_on}\n"
        ),
    },
    "penalty_notice": {
        "title": "行政处罚告知书",
        "body": (
            "{agency_name}\n行政处罚告知书\n{doc_number}\n\n"
            "{party_name}：\n"
            "    本机关于{filed_on}对你（单位）{cause}一案立案调查。经查明：{facts}\n"
            "    以上事实有{evidence}等证据为证。\n"
            "    你（单位）的上述行为违反了{violated_provision}的规定。依据{penalty_basis}的规定，"
            "本机关拟对你（单位）作出如下行政处罚：{proposed_penalty}。\n"
            "    根据《中华人民共和国行政处罚法》第四十四条、第四十五条的规定，你（单位）享有陈述、申辩的权利。"
            "你（单位）可以自收到本告知书之日起{statement_wd}个工作日内向本机关提出陈述、申辩意见；"
            "逾期未提出的，视为放弃上述权利。\n\n"
            "联系人：{contact_person}　　联系电话：{contact_phone}\n"
            "地址：{agency_address}"
            + _SEAL
        ),
    },
    "penalty_hearing_notice": {
        "title": "行政处罚听证告知书",
        "body": (
            "{agency_name}\n行政处罚听证告知书\n{doc_number}\n\n"
            "{party_name}：\n"
            "    本机关于{filed_on}对你（单位）{cause}一案立案调查。经查明：{facts}\n"
            "    以上事实有{evidence}等证据为证。\n"
            "    你（单位）的上述行为违反了{violated_provision}的规定。依据{penalty_basis}的规定，"
            "本机关拟对你（单位）作出如下行政处罚：{proposed_penalty}。\n"
            "    根据《中华人民共和国行政处罚法》第四十四条、第四十五条、第六十三条、第六十四条的规定，"
            "你（单位）享有陈述、申辩和要求听证的权利。你（单位）要求听证的，应当自收到本告知书之日起"
            "{hearing_request_wd}个工作日内向本机关提出；逾期未提出的，视为放弃听证权利。\n\n"
            "联系人：{contact_person}　　联系电话：{contact_phone}\n"
            "地址：{agency_address}"
            + _SEAL
        ),
    },
    "penalty_decision": {
        "title": "行政处罚决定书",
        "body": (
            "{agency_name}\n行政处罚决定书\n{doc_number}\n\n"
            "当事人：{party_name}\n"
            "统一社会信用代码（身份证件号码）：{party_id}\n"
            "住所（住址）：{party_address}\n"
            "    {party_name}{cause}一案，本机关于{filed_on}立案调查，并依法告知了拟作出行政处罚的内容及事实、"
            "理由、依据和当事人依法享有的权利。{statement_summary}\n"
            "    经查明：{facts}\n"
            "    以上事实有{evidence}等证据为证。\n"
            "    本机关认为，当事人的上述行为违反了{violated_provision}的规定。依据{penalty_basis}的规定，"
            "按照本机关行政处罚裁量基准，适用“{discretion_tier}”裁量阶次，{discretion_reason}"
            "本机关决定作出如下行政处罚：{penalty}。\n"
            "    {performance}\n"
            "    当事人如不服本处罚决定，可以自收到本决定书之日起六十日内向{reconsideration_body}申请行政复议，"
            "或者自收到本决定书之日起六个月内依法向{court}提起行政诉讼。申请行政复议或者提起行政诉讼的，"
            "行政处罚不停止执行，法律另有规定的除外。"
            + _SEAL
        ),
    },
    "hearing_notice": {
        "title": "行政处罚听证通知书",
        "body": (
            "{agency_name}\n行政处罚听证通知书\n{doc_number}\n\n"
            "{party_name}：\n"
            "    根据你（单位）的申请，本机关定于{hearing_at}在{hearing_place}对你（单位）{cause}一案举行听证。"
            "听证主持人：{hearing_host}；听证员：{hearing_members}；记录员：{hearing_clerk}。\n"
            "    你（单位）认为主持人与本案有直接利害关系的，有权申请回避。你（单位）可以亲自参加听证，"
            "也可以委托一至二人代理；委托代理人参加听证的，应当提交授权委托书。"
            "无正当理由拒不出席听证或者未经许可中途退出听证的，视为放弃听证权利，本机关终止听证。\n\n"
            "联系人：{contact_person}　　联系电话：{contact_phone}"
            + _SEAL
        ),
    },
    "service_receipt": {
        "title": "送达回证",
        "body": (
            "{agency_name}\n送达回证\n{doc_number}\n\n"
            "送达文书名称及文号：{served_document}\n"
            "受送达人：{recipient}\n"
            "送达地点：{service_place}\n"
            "送达方式：{service_method}\n"
            "收件人签名（盖章）：{receiver_signature}\n"
            "送达时间：{served_at}\n"
            "送达人：{servers}\n"
            "见证人：{witness}\n"
            "备注：{remarks}\n"
        ),
    },
    "handover_letter": {
        "title": "涉嫌犯罪案件移送书",
        "body": (
            "{agency_name}\n涉嫌犯罪案件移送书\n{doc_number}\n\n"
            "{police_agency}：\n"
            "    本机关在查处{party_name}{cause}一案中，发现其行为涉嫌构成{suspected_crime}，依法需要追究刑事责任。"
            "依据《行政执法机关移送涉嫌犯罪案件的规定》第三条的规定，经本机关负责人于{approved_on}批准，"
            "现将该案移送你单位，请依法审查，并自接受移送之日起三日内将是否立案的决定书面告知本机关。\n"
            "    附件：1. 涉嫌犯罪案件情况的调查报告\n"
            "          2. 涉案物品清单\n"
            "          3. 有关检验报告或者鉴定结论\n"
            "          4. 其他有关涉嫌犯罪的材料：{other_materials}\n"
            "    抄送：{procuratorate}"
            + _SEAL
        ),
    },
    "inspection_notice": {
        "title": "检查通知书",
        "body": (
            "{agency_name}\n检查通知书\n{doc_number}\n\n"
            "{party_name}：\n"
            "    根据{inspection_basis}的规定，本机关定于{inspection_on}对你（单位）{inspection_scope}进行{inspection_kind}。"
            "届时请你（单位）{preparation}，并安排熟悉情况的人员在场配合。\n"
            "    检查人员：{officers}（执法证件号：{credential_numbers}），检查时将出示执法证件。\n"
            "    你（单位）认为检查人员与本次检查有直接利害关系的，有权申请回避。\n\n"
            "联系人：{contact_person}　　联系电话：{contact_phone}"
            + _SEAL
        ),
    },
    "supervision_opinion": {
        "title": "行政执法监督意见书",
        "body": (
            "{agency_name}\n行政执法监督意见书\n{doc_number}\n\n"
            "{dept_name}：\n"
            "    本机关对你单位{matter}进行了监督。经查：\n"
            "{problems}\n"
            "    依据《行政执法监督条例》的规定，提出如下监督意见：\n"
            "{opinions}\n"
            "    请你单位自收到本意见书之日起{rectify_days}日内将办理情况书面报送本机关。\n"
            "联系人：{contact_person}　　联系电话：{contact_phone}"
            + _SEAL
        ),
    },
    "supervision_decision": {
        "title": "行政执法监督决定书",
        "body": (
            "{agency_name}\n行政执法监督决定书\n{doc_number}\n\n"
            "{dept_name}：\n"
            "    本机关于{noticed_on}向你单位发出{notice_number}，要求你单位对{matter}予以纠正。"
            "你单位{rectification_status}。\n"
            "    依据{decision_basis}的规定，本机关决定：{decision}。\n"
            "    你单位应当自收到本决定书之日起{rectify_days}日内执行，并将执行情况书面报送本机关。\n"
            "联系人：{contact_person}　　联系电话：{contact_phone}"
            + _SEAL
        ),
    },
    "supervision_notice": {
        "title": "行政执法监督通知书",
        "body": (
            "{agency_name}\n行政执法监督通知书\n{doc_number}\n\n"
            "{dept_name}：\n"
            "    本机关在行政执法监督工作中发现，你单位{matter}存在以下问题：\n"
            "{problems}\n"
            "    依据《行政执法监督条例》的规定，请你单位自收到本通知书之日起{rectify_days}日内依法予以纠正，"
            "并将整改情况书面报送本机关。\n"
            "联系人：{contact_person}　　联系电话：{contact_phone}"
            + _SEAL
        ),
    },
}

# The usual text for the decision's `performance` field when the penalty includes a fine
# (《行政处罚法》Arts. 67, 72: 缴罚分离, 3% a day capped at the fine).
FINE_PAYMENT_CLAUSE = (
    "当事人应当自收到本决定书之日起{payment_days}日内，将罚款缴至{payment_bank}（账号：{payment_account}）。"
    "到期不缴纳罚款的，本机关可以依据《中华人民共和国行政处罚法》第七十二条的规定，每日按罚款数额的百分之三加处罚款，"
    "加处罚款的数额不超出罚款的数额。"
)

# Chinese labels for every field name, used in error messages and console forms.
FIELD_LABELS: dict[str, str] = {
    "agency_name": "执法机关名称",
    "doc_number": "文号",
    "issued_on": "落款日期",
    "case_source": "案件来源",
    "discovered_on": "发现线索日期",
    "party_name": "当事人",
    "party_id": "统一社会信用代码（身份证件号码）",
    "party_address": "住所（住址）",
    "cause": "案由",
    "summary": "简要案情",
    "legal_basis": "立案依据",
    "officer_opinion": "承办人意见",
    "officers": "承办人",
    "opinion_on": "承办人意见日期",
    "approver_opinion": "负责人审批意见",
    "approver": "负责人",
    "approved_on": "批准日期",
    "filed_on": "立案日期",
    "facts": "违法事实",
    "evidence": "证据",
    "violated_provision": "违反的规定",
    "penalty_basis": "处罚依据",
    "proposed_penalty": "拟作出的行政处罚",
    "statement_wd": "陈述申辩期限（工作日）",
    "hearing_request_wd": "听证申请期限（工作日）",
    "contact_person": "联系人",
    "contact_phone": "联系电话",
    "agency_address": "机关地址",
    "statement_summary": "陈述申辩及采纳情况",
    "discretion_reason": "裁量理由",
    "discretion_tier": "裁量阶次",
    "penalty": "行政处罚内容",
    "performance": "履行方式和期限",
    "reconsideration_body": "行政复议机关",
    "court": "人民法院",
    "payment_days": "缴款期限（日）",
    "payment_bank": "代收机构",
    "payment_account": "缴款账号",
    "served_document": "送达文书名称及文号",
    "recipient": "受送达人",
    "service_place": "送达地点",
    "service_method": "送达方式",
    "receiver_signature": "收件人签名",
    "served_at": "送达时间",
    "servers": "送达人",
    "witness": "见证人",
    "remarks": "备注",
    "police_agency": "接受移送的公安机关",
    "suspected_crime": "涉嫌罪名",
    "other_materials": "其他有关材料",
    "procuratorate": "抄送的人民检察院",
    "inspection_basis": "检查依据",
    "inspection_on": "检查日期",
    "inspection_scope": "检查范围",
    "inspection_kind": "检查方式",
    "preparation": "需准备的材料",
    "credential_numbers": "执法证件号",
    "corrected_on": "改正日期",
    "education": "教育内容",
    "hearing_at": "听证时间",
    "hearing_place": "听证地点",
    "hearing_host": "听证主持人",
    "hearing_members": "听证员",
    "hearing_clerk": "记录员",
    "opinions": "监督意见",
    "noticed_on": "通知日期",
    "notice_number": "监督通知书文号",
    "rectification_status": "整改情况",
    "decision_basis": "决定依据",
    "decision": "监督决定",
    "dept_name": "被监督单位",
    "matter": "监督事项",
    "problems": "存在的问题",
    "rectify_days": "整改期限（日）",
}


class DocumentError(ValueError):
    """A template that cannot be rendered; the message is Chinese and names the cause."""


class MissingFieldError(DocumentError):
    """Fields the template needs but the caller did not give (or gave as None)."""

    def __init__(self, missing: list[str], title: str | None = None):
        self.missing = tuple(missing)
        self.title = title
        names = "、".join(f"{FIELD_LABELS.get(n, n)}（{n}）" for n in self.missing)
        where = f"《{title}》" if title else "文书"
        super().__init__(f"{where}缺少字段：{names}")


def _body_and_title(template: str | Mapping[str, str]) -> tuple[str, str | None]:
    if isinstance(template, str):
        return template, None
    return template["body"], template.get("title")


def template_fields(template: str | Mapping[str, str]) -> list[str]:
    """Field names a template uses, in order of first use; positional fields are an error."""
    body, title = _body_and_title(template)
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(body))
    except ValueError as exc:
        raise DocumentError(f"文书模板格式错误：{exc}") from None
    for _, field_name, _, _ in parsed:
        if field_name is None:
            continue
        root = re.split(r"[.\[]", field_name, maxsplit=1)[0]
        if not root or root.isdigit():
            raise DocumentError(f"文书模板{'《' + title + '》' if title else ''}只能使用命名字段")
        if root not in names:
            names.append(root)
    return names


def render_document(template: str | Mapping[str, str], fields: Mapping[str, Any]) -> str:
    """Fill a template (a body string or {"title", "body"}); raise MissingFieldError naming every gap."""
    body, title = _body_and_title(template)
    missing = [name for name in template_fields(template) if fields.get(name) is None]
    if missing:
        raise MissingFieldError(missing, title)
    try:
        return body.format_map(fields)
    except (KeyError, IndexError, AttributeError, TypeError, ValueError) as exc:
        raise DocumentError(f"文书{'《' + title + '》' if title else ''}渲染失败：{exc!r}") from None


@hookimpl
def zhifa_document_templates():
    return copy.deepcopy(TEMPLATES)


# The GB/T 9704 DOCX layouts of TEMPLATES, generated by scripts/make_templates.py.
DOCX_DIR = Path(__file__).resolve().parents[2] / "services" / "documents" / "templates"


@hookimpl(trylast=True)
def zhifa_document_files(dept):
    return {path.stem: str(path) for path in sorted(DOCX_DIR.glob("*.docx"))}
