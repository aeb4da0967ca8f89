"""HTTP API over penalty cases (served by the gateway process, reading and commanding through RPC)."""
import json

from nameko.rpc import ServiceRpc
from nameko.web.handlers import http
from werkzeug.exceptions import BadRequest

from services.gateway.auth import Unauthorized, http_dept
from services.kernel.web import error, int_arg, json_response

# `act` refusal codes that are not "bad input" (400).
COMMAND_STATUS = {"illegal_transition": 409, "forbidden": 403}


def _reply(doc, missing: str):
    if doc is None:
        return error(404, "not_found", missing)
    if "error" in doc:
        err = doc["error"]
        return error(400, err.get("code") or "invalid_argument", err.get("message") or missing, field=err.get("field"))
    return json_response(doc)


class PenaltyApi:
    penalty = ServiceRpc("penalty")

    @http("GET", "/api/v1/cases")
    def list_cases(self, request):
        args = request.args
        try:
            limit, offset = int_arg(request, "limit", 50, 1, 500), int_arg(request, "offset", 0, 0, 1_000_000)
        except BadRequest as exc:
            return error(400, "invalid_argument", exc.description)
        return _reply(self.penalty.list_cases(dept=args.get("dept"), stage=args.get("stage"),
                                              overdue=args.get("overdue"), limit=limit, offset=offset), "案件不存在")

    @http("GET", "/api/v1/cases/<string:case_id>")
    def get_case(self, request, case_id):
        return _reply(self.penalty.get_case(case_id), "案件不存在")

    @http("POST", "/api/v1/cases/<string:case_id>/commands/<string:command>")
    def post_case_command(self, request, case_id, command):
        """One 网上办案 command: JSON params; the department as the ingress authenticates it (a
        bearer token, or else the X-Zhifa-Dept header unless HTTP_REQUIRE_TOKEN is set)."""
        try:
            dept = http_dept(request, self.db)
        except Unauthorized as exc:
            return exc.response()
        if not dept:
            return error(400, "missing_header", "缺少请求头 X-Zhifa-Dept（办案部门）", field="X-Zhifa-Dept")
        body = request.get_data()
        if body.strip():
            try:
                params = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                return error(400, "malformed_json", "请求体不是合法的 JSON")
            if not isinstance(params, dict):
                return error(400, "not_an_object", "请求体必须是 JSON 对象（操作参数）")
        else:
            params = {}
        result = self.penalty.act(case_id, command, params, dept)
        if result.get("ok"):
            return json_response(result)
        return json_response(result, COMMAND_STATUS.get(result["error"].get("code"), 400))
