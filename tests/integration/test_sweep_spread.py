"""The deadline sweep judges what one scan found a share each second (services/kernel/base.py `DueShare`;
DEADLINE_SWEEP_SPREAD_SECONDS), shown through the real personnel service on real RabbitMQ and FerretDB: six
auxiliaries holding credentials (a breach, raised once their arrivals settled: docs/consistency.md) fall due
together, and the findings the sweep raises for them are judged at several of its ticks, not at the scan's
alone — and every one of them is raised."""
from __future__ import annotations

from datetime import datetime

import pytest

from plugins.hookspecs import hookimpl
from tests.helpers import SCJG, credential_issued, officer_registered, publish, wait_for
from tests.integration.test_personnel_settle import collect, personnel_with

AUXILIARIES = [f"511322-scjg-09{i:02d}" for i in range(1, 7)]
SETTLE_S = 2


class Settle:
    @hookimpl
    def zhifa_dept_settings(self, dept):
        return {"personnel": {"arrival_settle_seconds": SETTLE_S}} if dept == SCJG else None


@pytest.fixture
def suite(zhifa_config, container_factory):
    with personnel_with(zhifa_config, container_factory, {"DEADLINE_SWEEP_SECONDS": 4, "DEADLINE_SWEEP_SPREAD_SECONDS": 3},
                        Settle(), "test-spread-findings") as found:
        yield found


def test_one_scans_due_officers_are_judged_over_several_ticks_and_every_finding_is_raised(suite):
    facts = []
    for i, officer in enumerate(AUXILIARIES):
        facts += [officer_registered(officer, kind="auxiliary"), credential_issued(officer, f"川A51132209{i + 1:02d}")]
    publish(suite["amqp"], facts)
    wait_for(lambda: suite["officers"].count_documents({"_id": {"$in": AUXILIARIES}, "fact_ids.1": {"$exists": True}})
             == len(AUXILIARIES), timeout=20)
    keys = {f"PER-AUX-CREDENTIAL:credential:川A51132209{i + 1:02d}" for i in range(len(AUXILIARIES))}
    events = collect(suite["conn"], suite["findings"],
                     lambda got: keys <= {e["payload"]["finding_key"] for e in got if e["type"] == "finding.raised"},
                     timeout=40, then=1)
    raised = {e["payload"]["finding_key"]: e["payload"]["as_of"] for e in events if e["type"] == "finding.raised"}
    assert keys <= set(raised), sorted(keys - set(raised))  # every due officer judged: none lost between shares
    ticks = {datetime.fromisoformat(raised[k]).replace(microsecond=0) for k in keys}
    assert len(ticks) >= 2, sorted(raised.values())  # judged at several of the sweep's ticks, not all at once
