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
