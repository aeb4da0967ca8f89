"""Property-based tests of the HTTP API with Schemathesis against its own OpenAPI 3.1 document, on real
servers: for generated requests to every operation (valid and invalid data), no 5xx, a documented status code and content type,
and every answer matching its schema. A few examples per operation keep it to about half a minute on an idle machine."""
from __future__ import annotations

import pytest
import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from tests.api_kit import start_api, start_declared
from tests.helpers import credential_issued, officer_registered
from tests.integration.test_penalty import item_published, land, standard_published

# examples per operation and mode: ~100 operations, so a few each keep the run near half a minute
EXAMPLES = {"positive": 3, "negative": 2}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def api(zhifa_config, container_factory):
    start_declared(container_factory)  # every declared service: every route of the document has its backend
    kit = start_api(zhifa_config, container_factory)
    s = {"amqp": zhifa_config["AMQP_URI"], "config": zhifa_config}
    land(s, "registry", "items", item_published(), standard_published())
    land(s, "personnel", "officers", officer_registered("511322-scjg-0501"),
         credential_issued("511322-scjg-0501", "川A5113220501"))
    return kit


def test_generated_requests_never_fail_the_server_and_match_the_document(api):
    schema = schemathesis.openapi.from_url(f"{api.base}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    failures, calls = [], []
    for op, mode in [(op, mode) for op in operations for mode in GenerationMode]:
        roles = op.definition.raw.get("x-roles", [])
        who = "ops" if roles == ["operator"] else "aud" if roles == ["auditor"] else "scjg" \
            if "dept_user" in roles and op.method.upper() == "POST" else "sup"

        @settings(max_examples=EXAMPLES[mode.value], deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(generation_mode=mode))
        def run(case):
            response = case.call(base_url=api.base, headers=api.headers(who), timeout=20)
            calls.append((op.path, response.status_code))
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:  # no invalid request can be made for an operation without parameters
            assert mode is GenerationMode.NEGATIVE and not op.definition.raw.get("parameters") \
                and "requestBody" not in op.definition.raw
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{op.method.upper()} {op.path} as {who} ({mode.value}): {str(exc)[:600]}")
    assert not failures, "\n\n".join(failures)
    assert len({path for path, _ in calls}) == len({op.path for op in operations})  # every operation was tried
    assert any(status == 200 for _, status in calls) and any(status == 400 for _, status in calls)
