"""Services built from their declarations, on real RabbitMQ and FerretDB: racing commands are
decided inside the compare-and-set loop (exactly one accepted), the findings list pages with true
totals, and a service declared only by its own package (tests/fixtures/echo_service) runs."""
from datetime import datetime, timedelta

import eventlet
import pytest
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcClient

from services.kernel import manifest as m
from services.kernel.metrics import health
from services.penalty.service import PenaltyService
from services.personnel.service import PersonnelService
from tests.fixtures.echo_service.manifest import MANIFEST as ECHO
from tests.fixtures.echo_service.service import EchoService
from tests.helpers import CST, SCJG, STHJ, credential_issued, officer_registered, wait_for

CODE = "330217001000"
OFFICERS = ["511322-scjg-0101", "511322-scjg-0102"]


def party(n: int) -> dict:
    return {"type": "org", "id": f"91511322MA3C4X{n:04d}", "name": f"营山县第{n}食品有限公司"}


def race(client, method: str, calls: list[dict]) -> list[dict]:
    """Send every call before waiting for any answer: the service handles them concurrently."""
    replies = [getattr(client, method).call_async(**kwargs) for kwargs in calls]
    return [r.result() for r in replies]


def test_racing_case_commands_are_never_both_accepted(zhifa_config, container_factory):
    container_factory(PenaltyService).start()
    with ServiceRpcClient("penalty") as penalty:
        for n in range(4):
            cid = f"511322-scjg-2026-09{n:02d}"
            act = lambda command, **params: penalty.act(case_id=cid, command=command, params=params, dept=SCJG)
            assert act("file_case", item_code=CODE, party=party(n), case_no=f"营市监立〔2026〕9{n}号")["ok"]
            assert act("record_act", act_kind="evidence", officers=OFFICERS, text="现场检查")["ok"]
            assert act("notify", hearing_right=False)["ok"]
            decide = {"kinds": ["fine"], "party": party(n), "act_code": "FOOD-EXPIRED-SALE", "fine_amount": 75000,
                      "tier": "normal", "officers": OFFICERS}
            answers = race(penalty, "act", [
                {"case_id": cid, "command": "decide", "dept": SCJG,
                 "params": {**decide, "decision_no": f"营市监罚〔2026〕9{n}{k}号"}} for k in range(2)])
            assert sorted(a["ok"] for a in answers) == [False, True], answers
            [refused] = [a for a in answers if not a["ok"]]
            assert refused["error"]["code"] == "illegal_transition" and refused["error"]["message"]
            case = penalty.get_case(cid)
            assert [f["type"] for f in case["facts"]].count("case.decided") == 1
            assert {f["source"] for f in case["facts"]} == {"zhifa"}


def test_racing_credential_commands_are_never_both_accepted(zhifa_config, container_factory):
    container_factory(PersonnelService).start()
    dispatch = event_dispatcher()
    officer_id, number = "511322-scjg-0301", "川A5113220301"
    for env in (officer_registered(officer_id), credential_issued(officer_id, number)):
        dispatch("gateway", env["type"], env)
    with ServiceRpcClient("personnel") as personnel:
        wait_for(lambda: (o := personnel.get_officer(officer_id)) and o["credentials"])
        at = (datetime.now(CST) - timedelta(hours=1)).isoformat()
        answers = race(personnel, "change_credential", [
            {"action": "suspend", "officer_id": officer_id, "number": number, "at": at, "dept": SCJG,
             "reason": f"涉嫌违纪 {k}"} for k in range(3)])
        assert sorted(a["ok"] for a in answers) == [False, False, True], answers
        history = personnel.get_officer(officer_id)["history"]
        assert [f["type"] for f in history].count("credential.suspended") == 1
        # another department may not act on this officer's credential
        other = personnel.change_credential(action="restore", officer_id=officer_id, number=number, at=at, dept=STHJ)
        assert other["ok"] is False and other["error"]["code"] == "forbidden"
        # a command that breaks the contract is refused with the field, nothing is saved
        bad = personnel.change_credential(action="restore", officer_id=officer_id, number=number, at=at, dept=SCJG,
                                          reason="x" * 5000)
        assert bad["ok"] is False and bad["error"]["code"] == "contract_violation", bad
        assert len(personnel.get_officer(officer_id)["history"]) == 3
        # the justice bureau (司法局, the supervision body) may restore it: a supervisory fact
        bureau = personnel.change_credential(action="restore", officer_id=officer_id, number=number,
                                             at=datetime.now(CST).isoformat(), dept="511322-sfj", reason="复查后恢复")
        assert bureau["ok"] is True, bureau
        assert personnel.get_officer(officer_id)["history"][-1]["dept"] == "511322-sfj"


@pytest.fixture
def echo():
    m.register(ECHO)
    yield ECHO
    m.unregister(ECHO.name)


def test_a_declared_service_runs_from_its_declaration_alone(zhifa_config, container_factory, echo):
    container_factory(EchoService).start()
    assert health()[1]["services"]["echo"] == "ok"
    dispatch = event_dispatcher()
    notes = [(SCJG, "n1", "正常"), (SCJG, "n2", "违规一"), (SCJG, "n3", "违规二"), (STHJ, "n4", "违规三"),
             (SCJG, "n5", "违规四")]
    for dept, note_id, text in notes:
        dispatch("gateway", "note.recorded", {
            "event_id": f"ev-{note_id}", "type": "note.recorded", "schema_version": 1,
            "occurred_at": datetime.now(CST).isoformat(), "dept": dept, "source": "test", "payload":
                {"note_id": note_id, "text": text}})
    [(service, method)] = [s for s in m.findings_sources() if s[0] == "echo"]
    with ServiceRpcClient(service) as echo_rpc:
        first = wait_for(lambda: (r := getattr(echo_rpc, method)(limit=2)) and r["total"] == 4 and r)
        assert len(first["items"]) == 2 and first["limit"] == 2 and first["offset"] == 0
        rest = getattr(echo_rpc, method)(limit=2, offset=2)
        keys = {f["subject_id"] for f in first["items"] + rest["items"]}
        assert keys == {"n2", "n3", "n4", "n5"} and rest["total"] == 4
        scjg = getattr(echo_rpc, method)(dept=SCJG)
        assert scjg["total"] == 3 and {f["dept"] for f in scjg["items"]} == {SCJG}
        assert getattr(echo_rpc, method)(rule_id="NOPE")["total"] == 0
        assert getattr(echo_rpc, method)(limit=0)["error"]["field"] == "limit"
        assert getattr(echo_rpc, method)(severity="bad")["error"]["field"] == "severity"
        note = echo_rpc.get_note("n2")
        assert note["findings"][0]["rule_id"] == "ECHO-FORBIDDEN-WORD" and len(note["history"]) == 1
        # a redelivered fact changes nothing (kernel dedupe), a changed text resolves the finding
        dispatch("gateway", "note.recorded", {
            "event_id": "ev-n2b", "type": "note.recorded", "schema_version": 1,
            "occurred_at": datetime.now(CST).isoformat(), "dept": SCJG, "source": "test",
            "payload": {"note_id": "n2", "text": "已整改"}})
        wait_for(lambda: getattr(echo_rpc, method)(dept=SCJG)["total"] == 2)
