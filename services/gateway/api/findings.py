"""The supervision findings inbox (监督发现): open findings of every service in one list.

Each service keeps the findings of its own aggregates; the gateway reads them through RPC and
merges them, most severe first. Filters: dept, rule_id, severity, source (personnel / registry /
penalty); paging: limit, offset.
"""
from nameko.web.handlers import http
from werkzeug.exceptions import BadRequest

from services.kernel.web import error, int_arg, json_response

SEVERITY_RANK = {"critical": 0, "serious": 1, "warning": 2, "info": 3}
SOURCES = ("personnel", "registry", "penalty")


class FindingsApi:
    @http("GET", "/api/v1/findings")
    def list_findings(self, request):
        args = request.args
        try:
            limit, offset = int_arg(request, "limit", 100, 1, 1000), int_arg(request, "offset", 0, 0, 1_000_000)
        except BadRequest as exc:
            return error(400, "invalid_argument", exc.description)
        severity, rule_id, dept = args.get("severity"), args.get("rule_id"), args.get("dept") or None
        source = args.get("source")
        if severity and severity not in SEVERITY_RANK:
            return error(400, "invalid_argument", f"未知的严重程度 {severity}，可选：{'、'.join(SEVERITY_RANK)}",
                         field="severity")
        if source and source not in SOURCES:
            return error(400, "invalid_argument", f"未知的来源 {source}，可选：{'、'.join(SOURCES)}", field="source")
        found = []
        for name in SOURCES:
            if source and source != name:
                continue
            if name == "penalty":
                reply = self.penalty.list_findings(dept=dept, limit=1000)
            else:
                reply = getattr(self, name).list_findings(dept=dept)
            found.extend({**f, "source": name} for f in reply.get("items", []))
        found = [f for f in found if (not rule_id or f["rule_id"] == rule_id)
                 and (not severity or f["severity"] == severity)]
        found.sort(key=lambda f: (SEVERITY_RANK.get(f["severity"], 9), f["as_of"], f["finding_key"]))
        return json_response({"items": found[offset:offset + limit], "total": len(found),
                              "limit": limit, "offset": offset})
