"""The demo county's decision documents (`make run`): one 行政处罚决定书 per department, rendered by the
running documents service from the simulated case's facts, so a department user can download it.

`decision_facts` is pure (the simulated events in, the template's fields out); `render_demo_decisions`
asks the documents service over RPC with a fixed request id per case, so loading the demo again
renders nothing new (the same request answers the same document).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Iterable

log = logging.getLogger("zhifa.documents.demo")


def _yuan(amount: float) -> str:
    return f"{amount:,.0f}元".replace(",", "")


def decision_facts(events: Iterable[dict], case_id: str, agency_name: str, county: str) -> dict[str, Any]:
    """The fields of a decision document for one simulated case (facts as the department reported them)."""
    facts = {e["type"]: e for e in events if e["type"].startswith("case.") and e["payload"].get("case_id") == case_id}
    filed, decided = facts["case.filed"]["payload"], facts["case.decided"]["payload"]
    party = decided.get("party") or filed.get("party") or {}
    text = decided.get("text") or ""
    basis = text.split("之规定")[0].removeprefix("依据") if "之规定" in text else "（见案卷）"
    fine = float(decided.get("fine_amount") or 0)
    return {
        "agency_name": agency_name, "party_name": party.get("name", ""), "party_id": party.get("id", ""),
        "party_address": filed.get("party_address") or f"{county}", "cause": filed.get("summary", "").split("涉嫌")[-1],
        "filed_on": facts["case.filed"]["occurred_at"][:10], "statement_summary": "当事人在法定期限内未提出陈述、申辩。",
        "facts": filed.get("summary", ""), "evidence": "现场检查笔录、询问笔录、视听资料",
        "violated_provision": basis, "penalty_basis": basis, "discretion_tier": decided.get("tier") or "",
        "discretion_reason": "综合考虑当事人违法行为的事实、性质、情节和社会危害程度，", "penalty": f"罚款{_yuan(fine)}" if fine else "、".join(decided.get("kinds") or ()),
        "performance": "当事人应当自收到本决定书之日起十五日内缴纳罚款。", "reconsideration_body": f"{county}人民政府",
        "court": f"{county}人民法院", "issued_on": facts["case.decided"]["occurred_at"][:10],
    }


def render_demo_decisions(sim, amqp_uri: str, wait_seconds: float = 60.0) -> list[str]:
    """Render the first decided case of each department; the numbers rendered (may be empty)."""
    from nameko import config as nameko_config
    from nameko.standalone.rpc import ClusterRpcClient

    events = list(sim.events)
    chosen: dict[str, str] = {}
    for e in events:
        if e["type"] == "case.decided":
            chosen.setdefault(e["dept"], e["payload"]["case_id"])
    from services.simulator.generator import DEPARTMENTS

    def agency(dept: str) -> str:
        profile = DEPARTMENTS.get(dept.split("-", 1)[-1])
        return profile.title.format(county=sim.county.name, city=sim.county.city) if profile else dept

    numbers = []
    deadline = time.monotonic() + wait_seconds
    with nameko_config.patch({"AMQP_URI": amqp_uri}, clear=False), ClusterRpcClient(timeout=60) as rpc:
        for dept, case_id in sorted(chosen.items()):
            facts = decision_facts(events, case_id, agency(dept), sim.county.name)
            while True:
                reply = rpc.documents.render(kind="penalty_decision", subject_type="case", subject_id=case_id,
                                             dept=dept, facts=facts, request_id=f"demo-{case_id}", actor="demo")
                if reply.get("ok") or (reply.get("error") or {}).get("code") != "not_found" \
                        or time.monotonic() > deadline:
                    break
                time.sleep(2)  # the penalty service has not folded the case yet
            if reply.get("ok"):
                numbers.append(f"{reply['document']['number']}（{case_id}，doc_id {reply['document']['doc_id']}）")
            else:
                log.warning("demo decision for %s not rendered: %s", case_id, reply.get("error"))
    return numbers
