"""Documents service (文书): render a document with its number, keep it, fetch and list it again.

Entrypoints only; the decisions are in services/documents/domain.py, the layout in layout.py, the
rendering in render.py, storage and numbering in store.py (read its docstring for how a number is
issued without gaps and never reused after a crash). Report documents (月报 / 季报) take their
figures from the coordination service at render time (reports.py says who may make which).

`render` answers like a command: {"ok": True, "document": {...}} or {"ok": False, "error":
{code, field, message}}. Nothing is stored and no number is spent for a refused request: the
template is filled once with a placeholder number before the record is created.
"""
from __future__ import annotations

import base64
import logging
import uuid
from datetime import date, datetime
from typing import Any

import eventlet
from nameko.exceptions import RemoteError, UnknownService
from nameko.rpc import ClusterRpc, rpc
from nameko.timer import timer

from plugins.builtin.documents import DocumentError, MissingFieldError
from services.common.chinatime import local_date
from services.common.errors import DomainError
from services.common.ownership import is_justice_bureau
from services.documents import catalog
from services.documents import domain as d
from services.documents import reports
from services.documents.manifest import MANIFEST
from services.documents.render import ConverterUnavailable, docx_to_pdf, fill_docx, template_variables
from services.documents.store import DocumentStore, ensure_indexes, older
from services.kernel import config
from services.kernel.base import bounded
from services.kernel.clock import Clock
from services.kernel.commands import refusal
from services.kernel.metrics import Metrics
from services.kernel.mongo import Mongo
from services.kernel.plugins import Plugins
from services.kernel.settings import Settings

log = logging.getLogger("zhifa.documents")

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PDF_TYPE = "application/pdf"
FORMATS = ("docx", "pdf")
PLACEHOLDER_NUMBER = "〔待编号〕"
# a report's figures scan the county's data (and ask penalty, inspection, handover): longer than a lookup
REPORT_TIMEOUT = "DOCUMENTS_REPORT_TIMEOUT_SECONDS"


def _public(record: dict | None, with_facts: bool = False) -> dict | None:
    """A record as queries answer it: JSON-safe, no bytes."""
    if record is None:
        return None
    out = {k: v for k, v in record.items() if k not in ("_id", "template_sha256") and (with_facts or k not in ("facts", "fields"))}
    out["doc_id"] = record["_id"]
    if record.get("addressees"):   # DOC-ADDRESSEE: the departments it is addressed to read it too (API scope)
        out["depts"] = [record["dept"], *(a for a in record["addressees"] if a != record["dept"])]
    for key in ("created_at", "numbered_at", "rendered_at"):
        if isinstance(out.get(key), datetime):
            out[key] = out[key].isoformat()
    return out


class DocumentsService:
    name = "documents"
    manifest = MANIFEST

    db = Mongo("documents", indexes=ensure_indexes)
    rpc_cluster = ClusterRpc()
    clock = Clock()
    metrics = Metrics()
    plugins = Plugins()
    settings = Settings()

    # ---- helpers ----------------------------------------------------------------------------
    def _store(self) -> DocumentStore:
        return DocumentStore(self.db)

    def _kinds(self, settings: d.DocumentsSettings) -> dict[str, d.Kind]:
        titles = {kind: t["title"] for kind, t in self.plugins.document_templates().items()}
        return d.known_kinds({**titles, **reports.REPORT_KINDS}, settings)

    def _template(self, kind: str, dept: str) -> catalog.TemplateFile:
        found = catalog.resolve(kind, dept, self.plugins.document_files(dept), config.get("DOCUMENTS_TEMPLATE_DIR"))
        if found is None:
            raise DomainError(f"文书类型 {kind} 没有 DOCX 模板", code="not_found", field="kind")
        return found

    def _call(self, service: str, method: str, timeout_setting: str = "DOCUMENTS_RPC_TIMEOUT_SECONDS",
              **kwargs) -> tuple[bool, Any]:
        """(answered, reply) of an RPC to another service; (False, None) if it is not running."""
        try:
            with eventlet.Timeout(config.checked(timeout_setting)):
                return True, getattr(self.rpc_cluster[service], method)(**kwargs)
        except (eventlet.Timeout, UnknownService, RemoteError) as exc:
            log.warning("RPC %s.%s unavailable: %s", service, method, type(exc).__name__)
            return False, None

    def _case_of(self, subject_type: str, subject_id: str) -> tuple[bool, dict | None]:
        """(the penalty service answered, the case) for a case subject; (False, None) otherwise."""
        if subject_type != "case":
            return False, None
        checked, case = self._call("penalty", "get_case", case_id=subject_id)
        return checked, case if isinstance(case, dict) else None

    def _decision_basis(self, subject_type: str, subject_id: str, dept: str, facts: dict, checked: bool,
                        case: dict | None) -> dict:
        if subject_type == "case":
            if checked and case is None:
                raise DomainError(f"案件 {subject_id} 不存在：行政处罚决定书须对应已报送的案件", code="not_found",
                                  field="subject_id")
            if case is not None and case.get("dept") not in (None, dept):
                raise DomainError(f"案件 {subject_id} 属于其他部门", code="not_owner", field="subject_id")
        item_basis, tier_names = self._item_basis(case)
        basis = d.decision_basis(facts, case, item_basis, tier_names)
        return {**basis, "case_checked": checked}

    def _addressees(self, subject_type: str, subject_id: str, dept: str, addressee: Any) -> list[str]:
        """DOC-ADDRESSEE on the supervision case as the coordination service keeps it (RPC)."""
        case_depts = None
        if subject_type == "supervision":
            answered, case = self._call("coordination", "get_supervision_case", case_id=subject_id)
            if not answered:
                raise DomainError("协调监督服务暂不可用，无法核对监督案件的受文部门（未取号、未存档）", code="unavailable",
                                  field=None)
            case_depts = None if not isinstance(case, dict) else [x for x in case.get("depts") or [] if isinstance(x, str)]
        return d.addressees(subject_type, subject_id, dept, addressee, case_depts)

    def _item_basis(self, case: dict | None) -> tuple[str | None, dict[str, str]]:
        """The legal basis of the case's enforcement item and its standard's tier names (registry RPC)."""
        folded = (case or {}).get("case") or {}
        decisions = folded.get("decisions") or []
        code = (decisions[-1] or {}).get("item_code") if decisions else None
        code = code or folded.get("item_code")
        if not code:
            return None, {}
        answered, item = self._call("registry", "get_item", code=code)
        if not answered or not item:
            return None, {}
        bases = ((item.get("current") or {}).get("legal_basis")) or []
        text = "；".join(f"{b.get('law', '')}{b.get('article', '')}" for b in bases if b.get("law")) or None
        tiers = {str(t.get("tier")): str(t.get("name")) for t in (item.get("current_standard") or {}).get("tiers") or []
                 if t.get("tier") and t.get("name")}
        return text, tiers

    def _report_fields(self, kind: str, period: str, dept: str, facts: dict, settings: d.DocumentsSettings,
                       now: datetime, role: str | None = None) -> dict:
        """A report's figures from the coordination service (DOC-REPORT-OWNER first), as template fields."""
        given = sorted(reports.COMPUTED & set(facts))
        if given:
            raise DomainError(f"报告的字段 {'、'.join(given)} 由系统根据统计数据生成，不能在 facts 中提供",
                              code="invalid_value", field=f"facts.{given[0]}")
        req = reports.report_request(kind, period, dept, local_date(now), role)
        if kind == reports.MONTHLY:
            answered, report = self._call("coordination", "monthly_report", timeout_setting=REPORT_TIMEOUT, month=period,
                                          dept=None if req["county"] else dept)
        else:
            answered, report = self._call("coordination", "quarterly_report", timeout_setting=REPORT_TIMEOUT, quarter=period)
        if not answered or not isinstance(report, dict):
            raise DomainError("协调监督服务暂不可用，无法取得报告数据（未取号、未存档）", code="unavailable", field=None)
        if "error" in report:
            raise DomainError((report["error"] or {}).get("message") or "报告数据有误", code="invalid_value",
                              field="subject_id")
        name = str(facts.get("agency_name") or settings.agency_names.get(dept) or dept)
        return {"agency_name": name, **reports.report_fields(
            kind, period, report, scope_name="全县" if req["county"] else name, dept_names=settings.agency_names)}

    @staticmethod
    def _issued_on(facts: dict, now: datetime) -> date:
        given = facts.get("issued_on")
        if given is None:
            return local_date(now)
        try:
            return date.fromisoformat(str(given))
        except ValueError:
            raise DomainError("issued_on（成文日期）应为 YYYY-MM-DD", code="invalid_value", field="facts.issued_on") from None

    # ---- commands -----------------------------------------------------------------------------
    @rpc
    def render(self, kind, subject_type, subject_id, dept, facts=None, request_id=None, formats=None, actor=None,
               role=None, addressee=None):
        """Render `kind` for a subject from `facts`, number it, store it; {"ok", "document"}. `role` is the
        API caller's (the county's reports are a supervisor's); other services call without it.
        `addressee`: the supervised department a supervision document goes to (DOC-ADDRESSEE)."""
        try:
            return {"ok": True, "document": _public(self._render(kind, subject_type, subject_id, dept, facts or {},
                                                                  request_id, formats, actor, role, addressee))}
        except MissingFieldError as exc:
            return refusal("invalid_value", f"facts.{exc.missing[0]}", str(exc), missing=list(exc.missing))
        except DomainError as exc:
            return refusal(exc.code, exc.field, str(exc))
        except DocumentError as exc:
            return refusal("invalid_value", "kind", str(exc))

    def _render(self, kind, subject_type, subject_id, dept, facts, request_id, formats, actor, role=None,
                addressee=None) -> dict:
        settings: d.DocumentsSettings = self.settings.for_dept(dept if isinstance(dept, str) else None)
        spec = d.check_request(self._kinds(settings), kind, subject_type, subject_id, dept, facts, request_id)
        formats = tuple(formats or FORMATS)
        if not set(formats) <= set(FORMATS) or "docx" not in formats:
            raise DomainError("formats 只能是 [\"docx\"] 或 [\"docx\", \"pdf\"]", code="invalid_value", field="formats")
        store = self._store()
        doc_id = request_id or uuid.uuid4().hex
        existing = store.get(doc_id)
        if existing is not None:
            if (existing["dept"], existing["kind"], existing["subject_type"], existing["subject_id"]) != (
                    dept, kind, subject_type, subject_id):
                raise DomainError("request_id 已用于另一份文书", code="conflict", field="request_id")
            return self._finish(existing, settings)
        addressed = self._addressees(subject_type, subject_id, dept, addressee)
        now = self.clock()
        fields = {k: v for k, v in facts.items() if v is not None}
        if kind in reports.REPORT_KINDS:
            fields.update(self._report_fields(kind, subject_id, dept, fields, settings, now, role))
        basis = None
        checked, case = self._case_of(subject_type, subject_id)
        if kind == d.DECISION_KIND:
            basis = self._decision_basis(subject_type, subject_id, dept, fields, checked, case)
            fields.update(penalty_basis=basis["penalty_basis"], discretion_tier=basis["discretion_tier"])
        issued_on = self._issued_on(fields, now)
        fields["issued_on"] = d.cn_date(issued_on)
        template = self._template(kind, dept)
        fill_docx(template.data, {**fields, "doc_number": PLACEHOLDER_NUMBER}, spec.title)  # refuse before numbering
        # the plugin's 文号 part may depend on the subject (number by case type); a part other than the
        # department's usual one is a series of its own (counter_id)
        subject = {"type": subject_type, "id": subject_id, "facts": dict(fields),
                   "case": case if case is not None and case.get("dept") == dept else None}
        part = self.plugins.document_number_prefix(dept, kind, subject)
        usual = self.plugins.document_number_prefix(dept, kind)
        prefix = d.number_prefix(dept, kind, settings, part)
        template_meta = store.put_file(template.data, DOCX_TYPE)
        record = {
            "_id": doc_id, "dept": dept, "kind": kind, "title": spec.title, "subject_type": subject_type,
            "subject_id": subject_id, "addressees": addressed, "status": "numbering", "year": issued_on.year, "seq": None, "number": None,
            "prefix": prefix, "counter": d.counter_id(dept, kind, issued_on.year, None if part == usual else prefix), "facts": dict(facts),
            "fields": fields, "basis": basis, "formats": list(formats), "actor": actor, "created_at": now,
            "template": {"source": template.source, "sha256": template_meta["sha256"]}, "files": {},
        }
        record, _ = store.create(record)
        return self._finish(record, settings)

    def _finish(self, record: dict, settings: d.DocumentsSettings) -> dict:
        """Number (once) and render (until done) a stored request; safe to run again after a crash."""
        store = self._store()
        now = self.clock()
        if record.get("seq") is None:
            seq = store.claim(record["counter"], record["_id"], now)
            number = d.format_number(record["prefix"], record["year"], seq, settings)
            record = store.assign(record["_id"], seq, number, now)
        if record["status"] == "rendered":
            return record
        template = store.get_file(record["template"]["sha256"])
        docx = fill_docx(template, {**record["fields"], "doc_number": record["number"]}, record["title"])
        if len(docx) > settings.max_file_bytes:
            raise DomainError(f"文书超过 {settings.max_file_bytes} 字节", code="invalid_value", field="facts")
        files = {"docx": store.put_file(docx, DOCX_TYPE)}
        pdf_error = None
        if "pdf" in record.get("formats", FORMATS):
            try:
                pdf = docx_to_pdf(docx, timeout=settings.pdf_timeout_seconds, slots=settings.pdf_slots)
                if len(pdf) > settings.max_file_bytes:
                    raise ConverterUnavailable(f"PDF 超过 {settings.max_file_bytes} 字节，未保存")
                files["pdf"] = store.put_file(pdf, PDF_TYPE)
            except ConverterUnavailable as exc:
                pdf_error = str(exc)
                log.error("PDF of %s failed: %s", record["_id"], exc)
        changes = {"files": files, "sha256": files["docx"]["sha256"], "status": "rendered", "rendered_at": self.clock(),
                   "pdf_error": pdf_error}
        store.update(record["_id"], changes)
        return {**record, **changes}

    # ---- queries ------------------------------------------------------------------------------
    @rpc
    def get_document(self, doc_id):
        """One document: number, subject, facts and fields it was made from, basis, file hashes."""
        return _public(self._store().get(str(doc_id)), with_facts=True)

    @rpc
    def list_documents(self, dept=None, subject_type=None, subject_id=None, kind=None, limit=50, offset=0):
        """Documents of a department (made by it or addressed to it) and/or subject (case, handover,
        supervision case), newest first."""
        try:
            limit, offset = bounded(limit, "limit", 1, 500), bounded(offset, "offset", 0, 1_000_000)
        except DomainError as exc:
            return {"error": exc.to_dict()}
        query = {k: v for k, v in (("subject_type", subject_type), ("subject_id", subject_id), ("kind", kind))
                 if v is not None}
        if dept is not None:
            query["$or"] = [{"dept": dept}, {"addressees": dept}]
        page = self._store().page(query, limit, offset)
        page["items"] = [_public(r) for r in page["items"]]
        return page

    @rpc
    def get_file(self, doc_id, format="pdf"):
        """The bytes of a document (base64) with its name, type and sha256; None if absent."""
        if format not in FORMATS:
            return {"error": {"code": "invalid_value", "field": "format", "message": "format 只能是 docx 或 pdf"}}
        store = self._store()
        record = store.get(str(doc_id))
        meta = ((record or {}).get("files") or {}).get(format)
        if record is None or meta is None:
            return None
        data = store.get_file(meta["sha256"])
        if data is None:
            return None
        name = f"{record['title']}-{record['number']}.{format}"
        return {"doc_id": record["_id"], "dept": record["dept"], "addressees": list(record.get("addressees") or []),
                "kind": record["kind"],
                "subject_type": record["subject_type"], "filename": name, "content_type": meta["content_type"],
                "sha256": meta["sha256"], "size": len(data), "data_b64": base64.b64encode(data).decode("ascii")}

    @rpc
    def document_kinds(self, dept):
        """The kinds a department can render: title, subjects, template source and its fields."""
        settings = self.settings.for_dept(dept)
        out = []
        for kind, spec in sorted(self._kinds(settings).items()):
            if kind == reports.QUARTERLY and not is_justice_bureau(dept):
                continue   # the county's report: only the justice bureau makes it (DOC-REPORT-OWNER)
            try:
                template = self._template(kind, dept)
            except DomainError:
                continue
            fields = template_variables(template.data) - {"doc_number", "issued_on"}
            if kind in reports.REPORT_KINDS:   # the figures come from the coordination service
                fields = {"agency_name"}
            out.append({"kind": kind, "title": spec.title, "subjects": list(spec.subjects), "template": template.source,
                        "fields": sorted(fields)})
        return {"items": out}

    # ---- recovery -----------------------------------------------------------------------------
    @timer(interval=30)
    def resume(self):
        """Finish requests a crash left behind: claimed numbers onto records, unrendered records rendered."""
        self.resume_now()

    def resume_now(self) -> int:
        store = self._store()
        now = self.clock()
        settings: d.DocumentsSettings = self.settings.for_dept(None)
        done = 0
        for counter, doc_id, seq in store.orphan_claims():
            record = store.get(doc_id)
            if record is None:  # cannot happen: the record is written before its claim
                log.error("claim %s of %s has no record", seq, doc_id)
                continue
            if record["created_at"] < older(now, settings.resume_after_seconds):
                store.assign(doc_id, seq, d.format_number(record["prefix"], record["year"], seq, settings), now)
        for record in store.unfinished(older(now, settings.resume_after_seconds)):
            try:
                self._finish(record, self.settings.for_dept(record["dept"]))
                done += 1
            except Exception:
                log.exception("resuming document %s failed", record["_id"])
        store.prune_claims(older(now, settings.claim_keep_seconds))
        return done
