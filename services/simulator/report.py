"""Compare what Zhifa raised with the simulation's truth, per rule: expected / raised / missed / spurious.

Where the raised findings come from:
- `offline_findings`: the pure domains (personnel, registry, penalty with the department plugins)
  run over the generated facts at `as_of`, as the services would, with no broker or database —
  the offline acceptance check;
- `FindingCollector`: a running suite's `finding.raised` / `finding.resolved` events, consumed
  from `personnel.events`, `registry.events` and `penalty.events` by a queue bound before
  publishing; the net open findings are the ones whose latest event is a raise;
- `db_findings`: the open findings stored in the services' aggregate documents (a cross-check).
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping

Key = tuple[str, str, str, str]  # (rule_id, subject_type, subject_id, dept)

FINDING_SERVICES = ("personnel", "registry", "penalty")
FINDING_TYPES = ("finding.raised", "finding.resolved")
# aggregate collections per service database that keep `findings_open`
FINDING_COLLECTIONS = {"personnel": ("officers", "agencies"), "registry": ("items",), "penalty": ("cases",)}


def finding_key(payload: Mapping[str, Any]) -> Key:
    return (payload["rule_id"], payload["subject_type"], payload["subject_id"], payload["dept"])


# -- offline: the pure domains over the generated facts -----------------------------------------

def plugin_host():
    """The plugin host the services build, with the department plugins registered even when the
    package's entry points are not installed in this environment."""
    from plugins import mee, samr
    from plugins.host import build_plugin_manager

    host = build_plugin_manager()
    present = {p["name"] for p in host.plugins()}
    for name, module in (("samr", samr), ("mee", mee)):
        if name not in present and not host.pm.is_registered(module):
            host.register(module, name, source="direct")
    return host


def offline_findings(events: Iterable[dict], as_of: datetime, preset: str = "seed001") -> list:
    """Every finding the pure domains raise over `events` at `as_of`, wired as the services wire
    them: the plugins' settings, crime thresholds and rules per department; an officer's verdict
    from the personnel domain; holding, legal basis, area and tiers from the registry domain."""
    from services.common.workdays import DEFAULT_CALENDAR
    from services.penalty.domain import case as pc
    from services.penalty.domain import rules as pr
    from services.personnel import domain as per
    from services.registry import domain as reg
    from services.penalty.projections import item_view

    host = plugin_host()
    sections = host.preset(preset)
    psettings = per.PersonnelSettings.from_mapping(**sections.get("personnel", {}))
    rsettings = reg.RegistrySettings.from_mapping(**sections.get("registry", {}))

    officer_facts: dict[str, list] = defaultdict(list)
    agency_facts: dict[str, list] = defaultdict(list)
    case_facts: dict[str, list] = defaultdict(list)
    state = reg.RegistryState()
    for seq, env in enumerate(events):
        type_ = env["type"]
        if type_ in per.FACT_TYPES:
            fact = per.Fact.from_envelope(env, seq=seq)
            kind, agg_id = per.aggregate_of(fact)
            (agency_facts if kind == "agency" else officer_facts)[agg_id].append(fact)
        elif type_ in reg.FACT_TYPES:
            state.apply(reg.Fact.from_envelope(env), rsettings)
        elif type_.startswith("case."):
            case_facts[env["payload"]["case_id"]].append(pc.Fact.from_dict(env))

    officers = {oid: per.officer_from_facts(facts, oid) for oid, facts in officer_facts.items()}
    found = [f for o in officers.values() for f in per.evaluate(o, as_of, psettings, host.rules("personnel", o.dept))]
    for aid, facts in agency_facts.items():
        agency = per.agency_from_facts(facts, aid)
        found += per.evaluate(agency, as_of, psettings, host.rules("personnel", agency.dept))
    found += reg.evaluate_registry(state, None, as_of, rsettings)

    cases = {cid: pc.fold(facts, cid) for cid, facts in case_facts.items()}
    decisions = [{"case_id": c.case_id, "dept": c.dept, "decision_no": d.decision_no, "party_id": d.party.get("id"),
                  "act_code": d.act_code, "decided_at": d.at.isoformat(), "fine_amount": d.fine_amount,
                  "kinds": list(d.kinds), "revoked": d.revoked} for c in cases.values() for d in c.decisions]

    def credentials(officer_id: str, area: str, at: datetime):
        verdict = per.can_act(officers.get(officer_id), area, at)
        return verdict.allowed, [r.message for r in verdict.reasons]

    def items(dept: str, code: str, at: datetime):
        return item_view(state.items.get(code), dept, code, at)  # what the penalty service sees

    for case in cases.values():
        dept = case.dept or (case.held + case.anomalies)[0].fact.dept
        settings = host.penalty_settings(dept, preset)
        facts = pr.CaseFacts(credentials=credentials, items=items, crime_thresholds=host.crime_thresholds(dept),
                             other_decisions=decisions,
                             officer_kinds=lambda oid: officers[oid].kind if oid in officers else None)
        found += pr.evaluate(case, facts, settings, as_of, DEFAULT_CALENDAR, rules=host.rules("penalty", dept))
    return found


# -- comparison ---------------------------------------------------------------------------------

@dataclass
class RuleRow:
    rule_id: str
    expected: int = 0
    raised: int = 0
    matched: int = 0
    missed: list[Key] = field(default_factory=list)
    spurious: list[Key] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"rule_id": self.rule_id, "expected": self.expected, "raised": self.raised, "matched": self.matched,
                "missed": [list(k) for k in self.missed], "spurious": [list(k) for k in self.spurious]}


@dataclass
class Comparison:
    as_of: datetime
    rows: list[RuleRow]

    @property
    def missed(self) -> int:
        return sum(len(r.missed) for r in self.rows)

    @property
    def spurious(self) -> int:
        return sum(len(r.spurious) for r in self.rows)

    @property
    def ok(self) -> bool:
        return self.missed == 0 and self.spurious == 0

    def row(self, rule_id: str) -> RuleRow:
        return next((r for r in self.rows if r.rule_id == rule_id), RuleRow(rule_id))

    def to_dict(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "ok": self.ok,
                "totals": {"expected": sum(r.expected for r in self.rows), "raised": sum(r.raised for r in self.rows),
                           "matched": sum(r.matched for r in self.rows), "missed": self.missed,
                           "spurious": self.spurious},
                "rules": [r.to_dict() for r in self.rows]}


def compare(expected: Iterable[Key], raised: Iterable[Key], as_of: datetime) -> Comparison:
    """Per rule: how many were expected, raised, matched; which were missed and which spurious."""
    want, got = set(expected), set(raised)
    rules = sorted({k[0] for k in want | got})
    rows = []
    for rule in rules:
        w = {k for k in want if k[0] == rule}
        g = {k for k in got if k[0] == rule}
        rows.append(RuleRow(rule, len(w), len(g), len(w & g), sorted(w - g), sorted(g - w)))
    return Comparison(as_of, rows)


def compare_findings(expectations: Iterable[Any], findings: Iterable[Any], as_of: datetime) -> Comparison:
    """A simulator part's check: its `Expectation`s open at `as_of` against the domain `Finding`s raised."""
    expected = {x.key for x in expectations if x.since <= as_of and (x.until is None or as_of < x.until)}
    return compare(expected, {(f.rule_id, f.subject_type, f.subject_id, f.dept) for f in findings}, as_of)


def _width(text: str) -> int:
    return sum(2 if ord(c) > 0x2E7F else 1 for c in text)


def format_table(comparison: Comparison, title: str = "") -> str:
    """A plain-text table (CJK-aware column widths)."""
    header = ("规则", "预期", "发现", "命中", "漏报", "误报")
    lines = [[r.rule_id, str(r.expected), str(r.raised), str(r.matched), str(len(r.missed)), str(len(r.spurious))]
             for r in comparison.rows]
    t = comparison.to_dict()["totals"]
    total = ["合计", str(t["expected"]), str(t["raised"]), str(t["matched"]), str(t["missed"]), str(t["spurious"])]
    widths = [max(_width(row[i]) for row in [list(header), *lines, total]) for i in range(len(header))]

    def fmt(row):
        cells = [row[0] + " " * (widths[0] - _width(row[0]))]
        cells += [" " * (widths[i] - _width(row[i])) + row[i] for i in range(1, len(row))]
        return "  ".join(cells)

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    out = [title] if title else []
    out += [fmt(list(header)), rule, *map(fmt, lines), rule, fmt(total)]
    details = []
    for r in comparison.rows:
        details += [f"  漏报 {' '.join(k[1:3])}（{k[3]}）" for k in r.missed[:5]]
        details += [f"  误报 {r.rule_id} {' '.join(k[1:3])}（{k[3]}）" for k in r.spurious[:5]]
    if details:
        out += ["明细（每条规则最多 5 条）：", *details]
    out.append(f"结论：{'全部一致' if comparison.ok else f'漏报 {comparison.missed} 条，误报 {comparison.spurious} 条'}"
               f"（评估时点 {comparison.as_of.isoformat(timespec='seconds')}）")
    return "\n".join(out)


# -- live: consume the suite's output events ----------------------------------------------------

class EventTap:
    """A private queue bound to service exchanges, consumed in a thread; `on_event(envelope, t)`.

    The queue is declared (and bound) before `start()` returns, so nothing published afterwards
    is missed. It is exclusive and auto-deleted with the connection.
    """

    def __init__(self, amqp_uri: str, bindings: Iterable[tuple[str, str]],
                 on_event: Callable[[dict, float], None], name: str = "zhifa-sim"):
        self.amqp_uri = amqp_uri
        self.bindings = list(bindings)
        self.on_event = on_event
        self.queue_name = f"{name}-{uuid.uuid4().hex[:10]}"
        self.received = 0
        self.last_at = time.monotonic()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=self.queue_name, daemon=True)

    def start(self, timeout: float = 15) -> "EventTap":
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"could not bind {self.queue_name}: {self._error or 'timeout'}")
        if self._error:
            raise RuntimeError(f"could not bind {self.queue_name}: {self._error}")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def __enter__(self) -> "EventTap":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        from kombu import Connection, Consumer, Exchange, Queue

        try:
            with Connection(self.amqp_uri) as conn:
                channel = conn.channel()
                channel.basic_qos(0, 2000, False)
                queue = Queue(self.queue_name, exclusive=True, auto_delete=True, durable=False)
                queue(channel).declare()
                for exchange_name, routing_key in self.bindings:
                    exchange = Exchange(exchange_name, type="topic", durable=True)
                    exchange(channel).declare()
                    queue(channel).bind_to(exchange=exchange_name, routing_key=routing_key)
                consumer = Consumer(channel, queues=[queue], callbacks=[self._message], no_ack=True,
                                    accept=["json", "application/json", "text/plain"])
                consumer.consume()
                self._ready.set()
                while not self._stop.is_set():
                    try:
                        conn.drain_events(timeout=0.5)
                    except TimeoutError:
                        continue
                    except OSError as exc:
                        if "timed out" in str(exc):
                            continue
                        raise
        except BaseException as exc:  # reported by start() or by `error`
            self._error = exc
            self._ready.set()

    @property
    def error(self) -> BaseException | None:
        return self._error

    def _message(self, body, message) -> None:
        now = time.monotonic()
        raw = message.body
        try:
            envelope = json.loads(raw) if isinstance(raw, (bytes, str)) else body
        except ValueError:
            return
        self.received += 1
        self.last_at = now
        self.on_event(envelope, now)


class FindingCollector:
    """Net open findings of a running suite, from its finding events (bind before publishing).

    Per finding key the event with the latest `as_of` wins (arrival order breaks ties). That is
    only as good as the suite's ordering of `as_of`; `history` keeps every event of a key so a
    disagreement with the stored state can be shown.
    """

    def __init__(self, amqp_uri: str, services: Iterable[str] = FINDING_SERVICES):
        self.latest: dict[str, tuple[str, str, dict]] = {}  # finding_key -> (as_of, type, payload)
        self.history: dict[str, list[tuple[str, str, str]]] = defaultdict(list)  # (type, as_of, source)
        self.counts = {"finding.raised": 0, "finding.resolved": 0}
        self._lock = threading.Lock()
        bindings = [(f"{s}.events", t) for s in services for t in FINDING_TYPES]
        self.tap = EventTap(amqp_uri, bindings, self._event, name="zhifa-sim-findings")

    def __enter__(self) -> "FindingCollector":
        self.tap.start()
        return self

    def __exit__(self, *exc) -> None:
        self.tap.stop()

    def _event(self, envelope: dict, _: float) -> None:
        type_, payload = envelope.get("type"), envelope.get("payload") or {}
        if type_ not in FINDING_TYPES or "finding_key" not in payload:
            return
        with self._lock:
            self.counts[type_] += 1
            self.history[payload["finding_key"]].append((type_, payload.get("as_of", ""), envelope.get("event_id", "")))
            known = self.latest.get(payload["finding_key"])
            # the latest evaluation wins; a raise and a resolve of the same moment keep arrival order
            if known is None or payload.get("as_of", "") >= known[0]:
                self.latest[payload["finding_key"]] = (payload.get("as_of", ""), type_, payload)

    def quiet_for(self) -> float:
        return time.monotonic() - self.tap.last_at

    def open_findings(self) -> list[dict]:
        with self._lock:
            return [p for _, t, p in self.latest.values() if t == "finding.raised"]


def db_findings(mongo_uri: str, prefix: str = "zhifa_", services: Iterable[str] = FINDING_SERVICES) -> list[dict]:
    """Open findings kept in the services' aggregate documents (`findings_open`)."""
    import pymongo

    client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000, tz_aware=True)
    try:
        out = []
        for service in services:
            db = client[f"{prefix}{service}"]
            for name in FINDING_COLLECTIONS.get(service, ()):
                for doc in db[name].find({}, {"findings_open": 1}):
                    out.extend((doc.get("findings_open") or {}).values())
        return out
    finally:
        client.close()


def wait_until_quiet(collector: FindingCollector, settle: float, timeout: float,
                     progress: Callable[[str], None] | None = None) -> bool:
    """Wait until no finding event arrived for `settle` seconds (True) or `timeout` passed (False)."""
    deadline = time.monotonic() + timeout
    shown = 0.0
    while time.monotonic() < deadline:
        if collector.tap.error:
            raise RuntimeError(f"finding consumer failed: {collector.tap.error}")
        if collector.quiet_for() >= settle:
            return True
        if progress and time.monotonic() - shown >= 5:
            shown = time.monotonic()
            progress(f"已收到监督发现事件 {collector.tap.received} 条，等待平稳…")
        time.sleep(0.5)
    return False


def report_document(comparison: Comparison, *, source: str, sim_summary: str, config: dict,
                    published: int, extra: dict | None = None) -> dict:
    return {"source": source, "simulation": sim_summary, "config": config, "published": published,
            **comparison.to_dict(), **(extra or {})}


def write_json(path: str, document: dict) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(document, fh, ensure_ascii=False, indent=2, default=str)
