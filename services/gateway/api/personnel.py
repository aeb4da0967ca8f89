"""Read API over personnel (served by the gateway process, reading through RPC)."""
from nameko.rpc import ServiceRpc
from nameko.web.handlers import http

from services.kernel.web import error, int_arg, json_response


class PersonnelApi:
    personnel = ServiceRpc("personnel")

    @http("GET", "/api/v1/officers")
    def list_officers(self, request):
        args = request.args
        return json_response(self.personnel.list_officers(
            dept=args.get("dept"), status=args.get("status"), q=args.get("q"),
            limit=int_arg(request, "limit", 50, 1, 500), offset=int_arg(request, "offset", 0, 0, 1_000_000)))

    @http("GET", "/api/v1/officers/<string:officer_id>")
    def get_officer(self, request, officer_id):
        doc = self.personnel.get_officer(officer_id)
        return json_response(doc) if doc else error(404, "not_found", "执法人员不存在")

    @http("GET", "/api/v1/credentials/<string:number>")
    def get_credential(self, request, number):
        doc = self.personnel.get_credential(number)
        return json_response(doc) if doc else error(404, "not_found", "执法证件不存在")
