"""The OpenAPI 3.1 document: generated from the manifests and the API's own routes, checked in, complete."""
import json

import schemathesis

from services.api.openapi import CHECKED_IN, document, rendered
from services.api.routes import all_routes
from services.kernel.manifest import ROLES, manifests


def test_checked_in_document_is_the_generated_one():
    assert CHECKED_IN.read_text(encoding="utf-8") == rendered(), (
        "services/api/openapi.json is stale: run `python -m services.api.openapi > services/api/openapi.json`")


def test_every_declared_query_and_command_has_a_route():
    doc = document()
    ops = {op["operationId"]: (path, method) for path, item in doc["paths"].items() for method, op in item.items()}
    for m in manifests():
        for q in m.queries:
            assert ops[q.name] == (f"/api/v1{q.path}", "get")
        for c in m.commands:
            assert ops[c.name] == (f"/api/v1{c.path}", "post")
    for own in ("login", "logout", "me", "create_token", "list_findings", "list_audit", "list_dead_letters",
                "replay_dead_letter", "list_quarantine", "openapi"):
        assert own in ops
    assert len(ops) == len(all_routes())


def test_every_operation_documents_roles_parameters_responses_and_errors():
    doc = document()
    assert doc["openapi"] == "3.1.0"
    for path, item in doc["paths"].items():
        for method, op in item.items():
            where = f"{method} {path}"
            assert op["x-roles"] and set(op["x-roles"]) <= set(ROLES), where
            assert "200" in op["responses"] and "400" in op["responses"], where
            if "public" not in op["x-roles"]:
                assert {"401", "403"} <= set(op["responses"]), where
                assert op["security"] != [{}], where
            declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert declared == {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}, where
            for p in op["parameters"]:
                assert p["schema"].get("type") and p["description"], (where, p["name"])
                if p["schema"]["type"] == "string":
                    assert p["schema"]["maxLength"] > 0, (where, p["name"])
            error = op["responses"]["400"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/Error"}


def test_schemathesis_reads_every_operation():
    schema = schemathesis.openapi.from_dict(json.loads(rendered()))
    names = {result.ok().label for result in schema.get_all_operations()}
    assert len(names) == sum(len(v) for v in document()["paths"].values())


def test_a_service_declared_at_run_time_gets_routes_with_its_roles():
    from services.api.service import ApiService
    from services.kernel.manifest import AUDITOR, Param, Query, ServiceManifest, register, unregister

    echo = ServiceManifest(name="echo", title="回声", service="x:Y", queries=(
        Query("list_echoes", "list_echoes", "/echoes", "回声列表", roles=frozenset({AUDITOR}),
              params=(Param("dept", max_length=40),)),))
    register(echo)
    try:
        route, _ = ApiService.url_map().bind("localhost").match("/api/v1/echoes", method="GET")
        assert (route.service, route.rpc, route.roles) == ("echo", "list_echoes", frozenset({AUDITOR}))
        assert document()["paths"]["/api/v1/echoes"]["get"]["x-roles"] == ["auditor"]
    finally:
        unregister("echo")
    assert "/api/v1/echoes" not in document()["paths"]
