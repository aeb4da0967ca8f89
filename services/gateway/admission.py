"""Admission of one inbound message: decode, validate, decide. No I/O here."""
from __future__ import annotations

from dataclasses import dataclass, field

from contracts.catalog import Catalog, ContractError, Violation
from contracts.model import EventContract


@dataclass
class Admitted:
    envelope: dict
    contract: EventContract


@dataclass
class Refused:
    violations: list[dict]
    dept: str = "unknown"
    event_id: str | None = None
    reason: str = "invalid"
    extra: dict = field(default_factory=dict)


def dept_from_routing_key(routing_key: str) -> str:
    return routing_key.split(".", 1)[0] if routing_key else ""


def admit(catalog: Catalog, raw: bytes | str | dict, *, routing_key: str | None = None,
          authenticated_dept: str | None = None, refusal: Violation | None = None) -> Admitted | Refused:
    """Check one message. AMQP passes its routing key `<dept>.<type>`; HTTP passes its caller's dept.

    `refusal` is an authentication failure found before admission (services.gateway.auth): the
    message is refused with it, after decoding so the notice can still carry the event id.
    """
    envelope: dict | None = None
    try:
        try:
            envelope = raw if isinstance(raw, dict) else catalog.decode(raw)
        except ContractError:
            if refusal is None:
                raise
            envelope = None  # the refusal found before admission is the reason, not the unreadable body
        if refusal is not None:
            raise ContractError([refusal])
        expected = authenticated_dept
        if routing_key is not None:
            rk_dept = dept_from_routing_key(routing_key)
            expected = rk_dept
            if authenticated_dept and rk_dept != authenticated_dept:
                raise ContractError([_v("$routing_key", "dept_mismatch", f"路由键部门 {rk_dept} 与认证部门 {authenticated_dept} 不一致")])
        # the envelope as accepted: strings in NFC, so the digest and the services see one spelling
        contract, envelope = catalog.check(envelope, expected_dept=expected)
        if routing_key is not None and routing_key != f"{envelope['dept']}.{envelope['type']}":
            raise ContractError([_v("$routing_key", "routing_key_mismatch",
                                    f"路由键应为 {envelope['dept']}.{envelope['type']}")])
        return Admitted(envelope, contract)
    except ContractError as err:
        dept = ""
        event_id = None
        if isinstance(envelope, dict):
            dept = envelope.get("dept") if isinstance(envelope.get("dept"), str) else ""
            event_id = envelope.get("event_id") if isinstance(envelope.get("event_id"), str) else None
        dept = authenticated_dept or dept_from_routing_key(routing_key or "") or dept or "unknown"
        return Refused(err.to_list(), dept=_safe_key(dept), event_id=(event_id or "")[:64] or None, reason=err.reason)


def _v(field_: str, rule: str, message: str):
    from contracts.catalog import Violation

    return Violation(field_, rule, message)


def _safe_key(text: str) -> str:
    """A routing-key-safe dept label for the rejection exchange."""
    cleaned = "".join(c for c in text[:40] if c.isalnum() or c in "-_")
    return cleaned or "unknown"


# ---- what became of an event (GET /api/v1/events/<event_id>) ---------------------------------------
EVENT_STATUSES = ("received", "applied", "rejected", "refused", "dead_lettered")


def event_status(event_id: str, trail: dict, applied: dict | None) -> dict | None:
    """The status of one event from the gateway's records (`GatewayStore.event_trail`) and the owning
    service's answer to `fact_status` (None: not asked or no answer). None when nothing is known.

    - applied: the owning service stored it in an aggregate (its `fact_ids`), held facts included;
    - refused / dead_lettered: a service refused it (state-dependent rule; `violations`) or gave up
      after its retries; a dead letter an operator has replayed counts as in flight again;
    - received: admitted and dispatched, not (yet) applied — or the owner did not answer;
    - rejected: the gateway refused it (contracts, authentication, id conflict; `violations`).
    """
    accepted, rejected, dead = trail.get("accepted"), trail.get("rejected"), trail.get("dead")
    if accepted is not None:
        base = {"event_id": event_id, "type": accepted.get("type"), "dept": accepted.get("dept"),
                "channel": accepted.get("channel"), "received_at": accepted.get("received_at")}
        if applied and applied.get("applied"):
            return {**base, "status": "applied", "service": applied.get("service")}
        if dead is not None and dead.get("status") in ("dead", "refused"):
            headers = dead.get("headers") or {}
            refused = headers.get("x-zhifa-kind") == "refused"
            out = {**base, "status": "refused" if refused else "dead_lettered", "dead_letter_id": dead.get("_id"),
                   "service": dead.get("service") or headers.get("x-zhifa-service"), "dead_at": dead.get("dead_at")}
            if refused:
                out["violations"] = _violations(headers.get("x-zhifa-violations"))
            return out
        return {**base, "status": "received", **({"applied_unknown": True} if applied is None else {})}
    if rejected is not None:
        return {"event_id": event_id, "status": "rejected", "dept": rejected.get("dept"),
                "channel": rejected.get("channel"), "received_at": rejected.get("received_at"),
                "violations": rejected.get("violations") or [], "quarantine_id": rejected.get("_id")}
    return None


def _violations(text) -> list[dict]:
    import json

    try:
        found = json.loads(text) if isinstance(text, str) else []
    except ValueError:
        return []
    return [v for v in found if isinstance(v, dict)] if isinstance(found, list) else []
