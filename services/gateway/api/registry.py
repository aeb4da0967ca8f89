"""Read API over the item registry (served by the gateway process, reading through RPC)."""
from nameko.rpc import ServiceRpc
from nameko.web.handlers import http

from services.kernel.web import error, json_response

# Registry error codes that mean "no such thing"; every other error is a bad argument.
NOT_FOUND = {"not_found", "standard_not_found", "unknown_tier"}


def _reply(doc, missing: str):
    if doc is None:
        return error(404, "not_found", missing)
    if "error" in doc:
        err = doc["error"]
        status = 404 if err.get("code") in NOT_FOUND else 400
        return error(status, err.get("code") or "bad_argument", err.get("message") or missing, field=err.get("field"))
    return json_response(doc)


def _missing(name: str):
    return error(400, "missing_argument", f"缺少参数 {name}", field=name)


class RegistryApi:
    registry = ServiceRpc("registry")

    @http("GET", "/api/v1/items")
    def list_items(self, request):
        dept = request.args.get("dept")
        if not dept:
            return _missing("dept")
        return _reply(self.registry.items_of_dept(dept, at=request.args.get("at")), "执法事项不存在")

    @http("GET", "/api/v1/items/<string:code>")
    def get_item(self, request, code):
        return _reply(self.registry.get_item(code), "执法事项不存在")

    @http("GET", "/api/v1/items/<string:code>/tier-range")
    def get_tier_range(self, request, code):
        tier = request.args.get("tier")
        if not tier:
            return _missing("tier")
        return _reply(self.registry.tier_range(code, tier, at=request.args.get("at")), "裁量阶次不存在")

    @http("GET", "/api/v1/public/items")
    def list_public_items(self, request):
        dept = request.args.get("dept")
        if not dept:
            return _missing("dept")
        return _reply(self.registry.publication_view(dept, at=request.args.get("at")), "执法事项不存在")
