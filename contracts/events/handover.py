"""Criminal-justice handover contracts (行政执法与刑事司法衔接, 国务院令第310号).

Three kinds of party publish these facts through the same ingress, each under its own department
code (the envelope's `dept`, checked against the routing key and the broker user / HTTP token):

- the enforcement department (行政执法机关, e.g. `511322-scjg`): tag `party:department`;
- the police (公安机关, short name `ga`, e.g. `511322-ga`): tag `party:police`;
- the procuratorate (人民检察院, short name `jcy`, e.g. `511322-jcy`): tag `party:procuratorate`.

The contract checks shapes; the handover domain checks the party: a step from a party whose kind
may not publish it, or from a police unit / procuratorate the handover is not addressed to, is
refused with code `not_addressee` (a `refused` notice on `ingress.rejections`). Every payload
carries `handover_id`. See docs/rules-handover.md.
"""
from contracts.fields import DEPT, ID, NAME, SHORT, TEXT, opt, req
from contracts.model import EventContract
from services.handover.domain import DOCUMENT_KINDS, OPEN_MODES, SUPERVISION_OUTCOMES

HANDOVER_ID = req(ID)
BOOL = {"type": "boolean"}
OFFICERS = {"type": "list", "maxlength": 20, "schema": ID}
DOCUMENTS = {"type": "list", "maxlength": len(DOCUMENT_KINDS),
             "schema": {"type": "string", "allowed": list(DOCUMENT_KINDS)}}
MEASURES = {"type": "dict", "maxlength": 20, "keysrules": {"type": "string", "regex": r"^[a-z][a-z0-9_]{0,39}$"},
            "valuesrules": {"type": "number", "min": 0, "max": 1_000_000_000_000}}
EXAMPLE_ID = "511322-scjg-YS-2026-003"


def _c(type_: str, party: str, doc: str, schema: dict, example: dict) -> EventContract:
    return EventContract(type=type_, version=1, owner="handover", doc=doc,
                         schema={"handover_id": HANDOVER_ID, **schema},
                         example={"handover_id": EXAMPLE_ID, **example}, direction="ingress",
                         tags=("handover", f"party:{party}"))


CONTRACTS = [
    # -- the enforcement department --
    _c("handover.suspicion_raised", "department",
       "Department: a team of officers (≥ 2) found a suspected crime and wrote the transfer report (310号令 Art. 5).", {
           "case_id": opt(ID), "suspected_crime": req({**SHORT, "minlength": 1}), "officers": req(OFFICERS),
           "report_ref": opt(SHORT), "summary": opt(TEXT), "measures": opt(MEASURES),
       }, {"case_id": "511322-scjg-2026-0042", "suspected_crime": "涉嫌销售伪劣产品罪",
           "officers": ["51132200123", "51132200456"], "report_ref": "营市监移报〔2026〕3号",
           "summary": "当事人销售掺杂掺假的白酒，经查销售金额6.8万元，达到刑事立案追诉标准",
           "measures": {"sales_amount": 68000}}),
    _c("handover.head_decided", "department",
       "Department: its head approved or refused the transfer (within 3 days of the report, Art. 5); a refusal gives reasons.", {
           "approved": req(BOOL), "head": opt(NAME), "reasons": opt(TEXT),
       }, {"approved": True, "head": "王建国"}),
    _c("handover.transferred", "department",
       "Department: the case was transferred to the police (within 24 hours of approval, Art. 5) with its documents (Art. 6).", {
           "police_dept": req(DEPT), "police_unit": opt(NAME), "transfer_no": opt(SHORT), "documents": req(DOCUMENTS),
           "appraisal_required": opt(BOOL), "copy_to": opt(DEPT),
       }, {"police_dept": "511322-ga", "police_unit": "营山县公安局经济犯罪侦查大队", "transfer_no": "营市监移〔2026〕3号",
           "documents": ["transfer_letter", "investigation_report", "exhibit_list", "appraisal_report"],
           "appraisal_required": True, "copy_to": "511322-jcy"}),
    _c("handover.copied", "department",
       "Department: the transfer letter and the list of materials were copied to the procuratorate (抄送, Art. 5).", {
           "procuratorate_dept": req(DEPT), "text": opt(TEXT),
       }, {"procuratorate_dept": "511322-jcy", "text": "抄送营山县人民检察院：移送书及有关材料目录"}),
    _c("handover.review_requested", "department",
       "Department: it asked the police to review a refusal to open a case (within 3 days of the notice, Art. 9).", {
           "reasons": opt(TEXT),
       }, {"reasons": "销售金额经第三方审计确认超过五万元，应当立案"}),
    _c("handover.supervision_suggested", "department",
       "Department: it suggested that the procuratorate supervise the police's refusal (立案监督, within 3 days, Art. 9).", {
           "procuratorate_dept": req(DEPT), "reasons": opt(TEXT),
       }, {"procuratorate_dept": "511322-jcy", "reasons": "公安机关复议后仍不予立案，建议依法进行立案监督"}),
    _c("handover.exhibits_handed_over", "department",
       "Department: exhibits and materials were handed over after the police opened a case (within 3 days, Art. 12).", {
           "exhibit_list_ref": opt(SHORT), "text": opt(TEXT),
       }, {"exhibit_list_ref": "营市监物移〔2026〕3号", "text": "移交散装白酒120箱及进货单据，办结交接手续"}),
    _c("handover.penalty_case_opened", "department",
       "Department: after a reverse handover or a final refusal it opened (or reopened) the penalty case (Arts. 10, 13).", {
           "case_id": req(ID), "mode": opt({"type": "string", "allowed": list(OPEN_MODES)}),
       }, {"case_id": "511322-scjg-2026-0042", "mode": "reopened"}),
    # -- the police --
    _c("handover.received", "police",
       "Police (the addressee): signed the receipt (回执) of a transferred case (Art. 7).", {
           "receipt_no": opt(SHORT), "police_unit": opt(NAME),
       }, {"receipt_no": "营公经回〔2026〕17号", "police_unit": "营山县公安局经济犯罪侦查大队"}),
    _c("handover.forwarded", "police",
       "Police (the addressee): not its jurisdiction, forwarded to the competent police (within 24 hours, Art. 7).", {
           "to_police_dept": req(DEPT), "to_police_unit": opt(NAME), "reason": opt(TEXT),
       }, {"to_police_dept": "511300-ga", "to_police_unit": "南充市公安局食品药品环境犯罪侦查支队",
           "reason": "案件涉及跨县销售网络，由市局管辖"}),
    _c("handover.police_decided", "police",
       "Police (the addressee): decided to open a criminal case or not, with reasons (within 3 days of acceptance, Art. 8).", {
           "opened": req(BOOL), "reasons": opt(TEXT), "notice_no": opt(SHORT), "criminal_case_no": opt(SHORT),
       }, {"opened": True, "notice_no": "营公（经）立字〔2026〕21号", "criminal_case_no": "A5113225100002026040021"}),
    _c("handover.review_answered", "police",
       "Police (the addressee): answered the department's request for review (within 3 days, Art. 9).", {
           "opened": req(BOOL), "reasons": opt(TEXT), "notice_no": opt(SHORT),
       }, {"opened": False, "reasons": "现有证据不能证明销售金额达到追诉标准，维持不予立案决定",
           "notice_no": "营公（经）复字〔2026〕2号"}),
    # -- the procuratorate --
    _c("handover.supervision_outcome", "procuratorate",
       "Procuratorate (copied or asked): the outcome of its filing supervision (立案监督).", {
           "outcome": req({"type": "string", "allowed": list(SUPERVISION_OUTCOMES)}), "notice_no": opt(SHORT),
           "text": opt(TEXT),
       }, {"outcome": "notice_to_open", "notice_no": "营检立监〔2026〕1号", "text": "通知公安机关立案"}),
    # -- police or procuratorate: reverse handover --
    _c("handover.returned", "police_or_procuratorate",
       "Police or procuratorate: a case needing no criminal liability but an administrative penalty is returned to "
       "the department (反向衔接, Arts. 10, 13); a new handover_id opens a reverse handover.", {
           "to_dept": req(DEPT), "case_id": opt(ID), "suspected_crime": opt(SHORT), "reason": req({**TEXT, "minlength": 1}),
           "opinion": opt(TEXT),
       }, {"to_dept": "511322-scjg", "case_id": "511322-scjg-2026-0042",
           "reason": "犯罪事实显著轻微，不需要追究刑事责任，但依法应当给予行政处罚",
           "opinion": "建议依法对当事人作出行政处罚"}),
]
