"""The demo county `make run` loads once the services are healthy (services/launcher.py).

A small simulated county — two departments (市场监管、生态环境), a dozen officers whose credentials
are valid, suspended and restored, expired and renewed, State-Council-issued and filed (one not),
a few enforcement items with five-tier discretion standards, and a handful of cases, some of
which break a rule. The seed is fixed, so loading it again publishes the same event ids and the
gateway treats them as duplicates: the demo is idempotent.
"""
from __future__ import annotations

from services.simulator.generator import county_config, simulate
from services.simulator.publish import publish_amqp
from services.simulator.truth import expected_findings

DEMO_SEED = 20250101
DEMO_YEAR = 2025


def load_demo(amqp_uri: str, seed: int = DEMO_SEED, year: int = DEMO_YEAR) -> str:
    """Publish the demo county through the AMQP ingress (with confirms); return a one-line summary."""
    sim = simulate(county_config("demo", seed=seed, year=year))
    stats = publish_amqp(sim.events, amqp_uri)
    injected = len(expected_findings(sim))
    handovers = _demo_handovers(sim, amqp_uri)
    documents = _demo_documents(sim, amqp_uri)
    return (f"{sim.county.name}{year}年演示数据：{len(sim.depts)}个部门、"
            f"{sum(1 for o in sim.officers if o.kind == 'officer')}名执法人员、"
            f"{len({e['payload']['case_id'] for e in sim.events if e['type'].startswith('case.')})}件案件，"
            f"已发布 {stats.confirmed}/{stats.published} 条事件，其中注入违规 {injected} 处{handovers}{documents}")


def _demo_handovers(sim, amqp_uri: str) -> str:
    """The handover part (services/simulator/handover.py): the department's, the police's (-ga) and the
    procuratorate's (-jcy) steps, one breach of every handover rule; never stops `make run`."""
    try:
        from services.simulator.handover import simulate_handovers

        part = simulate_handovers(sim)
        stats = publish_amqp(part.events, amqp_uri)
    except Exception as exc:  # the handover service is optional for the demo
        return f"；行刑衔接演示数据未发布（{type(exc).__name__}）"
    return (f"；行刑衔接 {len({e['payload']['handover_id'] for e in part.events})} 件（{stats.confirmed} 条事件，"
            f"注入违规 {len(part.expectations)} 处）")


def _demo_documents(sim, amqp_uri: str) -> str:
    """Decision documents of the demo (services/documents/demo.py); never stops `make run`."""
    try:
        from services.documents.demo import render_demo_decisions

        numbers = render_demo_decisions(sim, amqp_uri)
    except Exception as exc:  # the documents service is optional for the demo
        return f"；演示文书未生成（{type(exc).__name__}）"
    return f"；演示处罚决定书：{'、'.join(numbers)}" if numbers else ""
