"""Department isolation of declared queries for a department user (the API service's query step, with
the RPC replaced: the real round trip is in tests/integration/test_api_access.py)."""
import pytest

from services.api.accounts import Principal
from services.api.routes import Route
from services.api.service import ApiService, Refusal
from services.kernel.manifest import READERS

OWN, OTHER = "511322-scjg", "511322-sthj"
USER = Principal("li", "dept_user", OWN, via="token")
SUPERVISOR = Principal("boss", "supervisor", None, via="token")


class Stub(ApiService):
    def __init__(self, reply):
        self.reply, self.sent = reply, None

    def _call(self, service, method, **kwargs):
        self.sent = kwargs
        return self.reply

    def _answer(self, request, route, principal, doc, target, reveal=None):
        return doc


def route(scope: str) -> Route:
    return Route("GET", "/things", "list_things", "x", READERS, (), "query", "svc", "list_things", scope)


def test_dept_argument_is_forced_to_the_users_department():
    stub = Stub({"items": [{"dept": OWN}], "total": 1})
    assert stub._query(route("dept_arg"), USER, {"dept": None}, None)["total"] == 1
    assert stub.sent == {"dept": OWN}
    with pytest.raises(Refusal) as exc:
        stub._query(route("dept_arg"), USER, {"dept": OTHER}, None)
    assert (exc.value.status, exc.value.code, exc.value.field) == (403, "forbidden_dept", "dept")
    stub._query(route("dept_arg"), SUPERVISOR, {"dept": None}, None)
    assert stub.sent == {"dept": None}  # the supervisor sees every department


def test_a_record_of_another_department_is_a_404():
    with pytest.raises(Refusal) as exc:
        Stub({"officer_id": "o", "dept": OTHER})._query(route("result"), USER, {}, None)
    assert exc.value.status == 404
    assert Stub({"credential": "c", "holder": {"dept": OWN}})._query(route("result"), USER, {}, None)
    assert Stub({"item_code": "i", "depts": [OTHER, OWN]})._query(route("result"), USER, {}, None)
    assert Stub({"officer_id": "o", "dept": OTHER})._query(route("result"), SUPERVISOR, {}, None)


def test_a_department_scoped_list_without_a_dept_parameter_never_leaks_another_department():
    leaking = Stub({"items": [{"dept": OWN}, {"dept": OTHER}], "total": 2})
    with pytest.raises(Refusal) as exc:
        leaking._query(route("dept_arg"), USER, {}, None)
    assert (exc.value.status, exc.value.code) == (403, "forbidden_dept")
    assert Stub({"items": [{"dept": OWN}], "total": 1})._query(route("dept_arg"), USER, {}, None)["total"] == 1


def test_only_a_supervisor_may_ask_to_see_personal_data_and_must_say_why():
    stub = Stub({"case_id": "c", "dept": OWN})
    stub._query(route("result"), SUPERVISOR, {"reveal": "核实当事人身份"}, None)
    assert stub.sent == {}  # the reason is the API's, not passed to the service
    for who, reason, status in ((USER, "核实当事人身份", 403), (SUPERVISOR, "看看", 400)):
        with pytest.raises(Refusal) as exc:
            stub._query(route("result"), who, {"reveal": reason}, None)
        assert exc.value.status == status and exc.value.field == "reveal"


class Echo:
    """A service class for the actor check (never run)."""

    def with_actor(self, dept, actor=None):
        return dept

    def without_actor(self, dept):
        return dept


def test_commands_name_who_acted_where_the_service_records_it():
    from services.api.service import takes_actor
    from services.kernel.manifest import ServiceManifest, register, unregister

    register(ServiceManifest(name="echo-actor", title="回声", service="tests.unit.test_api_scope:Echo"))
    try:
        assert takes_actor("echo-actor", "with_actor") and not takes_actor("echo-actor", "without_actor")
        assert not takes_actor("echo-actor", "no_such_method")
    finally:
        unregister("echo-actor")
