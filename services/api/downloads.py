"""Binary downloads: the stored DOCX / PDF of a document (文书), kept apart from the JSON routes.

Declared queries answer JSON; a document's file is bytes, so the API has one own route for it. The
documents service answers `get_file(doc_id, format)` over RPC with the bytes in base64 (nameko RPC
is JSON) and the department the document belongs to; the API checks the department, audits the
read (a document names its party: personal data, never maskable inside a PDF) and answers the
bytes with their type, a UTF-8 file name and the sha256 the documents service stored.

Who may download: supervisors (司法局 reviews case files), a department's own users and the users of
the departments a supervision document is addressed to (受文部门, DOC-ADDRESSEE); auditors
only report documents (月报/季报: figures, no party), never a case's (they read the masked JSON
record instead); operators not at all.
"""
from __future__ import annotations

import base64
from urllib.parse import quote

from werkzeug.wrappers import Response

from services.kernel.manifest import AUDITOR, DEPT_USER, SUPERVISOR, Param

FORMATS = ("docx", "pdf")
AUDITOR_SUBJECTS = ("report",)   # the documents an auditor may download: reports of figures
CONTENT_TYPES = {"pdf": "application/pdf",
                 "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}


def routes(route_cls) -> tuple:
    return (route_cls("GET", "/documents/{doc_id}/download/{format}", "download_document",
                      "下载文书原件（DOCX 或 PDF，含当事人信息，每次下载记入审计日志；审计人员只能下载月报、季报）",
                      frozenset({SUPERVISOR, DEPT_USER, AUDITOR}),
                      (Param("doc_id", in_="path", required=True, max_length=64, pattern=r"[A-Za-z0-9_-]{8,64}",
                             description="文书编号"),
                       Param("format", in_="path", required=True, enum=FORMATS, description="文件格式")),
                      scope="result", personal=True, not_found="文书或其文件不存在", tag="documents"),)


def download_document(api, route, principal, args, request, refusal_cls) -> Response:
    reply = api._call("documents", "get_file", doc_id=args["doc_id"], format=args["format"])
    if isinstance(reply, dict) and "error" in reply:
        raise api._refused(reply, route.not_found)
    if not reply or (principal.role == DEPT_USER and principal.dept != reply.get("dept")
                     and principal.dept not in (reply.get("addressees") or ())):
        raise refusal_cls(404, "not_found", route.not_found)  # another department's document: as if absent
    if principal.role == AUDITOR and reply.get("subject_type") not in AUDITOR_SUBJECTS:
        raise refusal_cls(403, "forbidden_role", "审计人员只能下载统计报告（月报、季报），其他文书请查看脱敏的文书记录")
    data = base64.b64decode(reply["data_b64"])
    api._audit(request, route, principal, "personal_read", 200,
               {"doc_id": args["doc_id"], "format": args["format"], "dept": reply.get("dept")}, "full")
    resp = Response(data, status=200, content_type=reply.get("content_type") or CONTENT_TYPES[args["format"]])
    resp.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(reply['filename'])}"
    resp.headers["X-Content-SHA256"] = reply["sha256"]
    return resp
