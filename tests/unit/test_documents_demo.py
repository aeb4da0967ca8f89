"""The demo county's decision documents: every field of the decision comes from the simulated case."""
from plugins.builtin.documents import TEMPLATES, template_fields
from services.documents.demo import decision_facts
from services.documents.render import TEMPLATES_DIR, fill_docx
from services.simulator.generator import county_config, simulate


def test_demo_decision_facts_fill_the_decision_template():
    sim = simulate(county_config("demo", seed=20250101, year=2025))
    decided = [e for e in sim.events if e["type"] == "case.decided"]
    assert decided
    case_id = decided[0]["payload"]["case_id"]
    facts = decision_facts(sim.events, case_id, "营山县生态环境局", sim.county.name)
    needed = set(template_fields(TEMPLATES["penalty_decision"])) - {"doc_number"}
    assert all(facts.get(n) for n in needed), [n for n in needed if not facts.get(n)]
    assert facts["discretion_tier"] == decided[0]["payload"]["tier"]
    assert facts["penalty_basis"].startswith("《") and "之规定" not in facts["penalty_basis"]
    data = fill_docx((TEMPLATES_DIR / "penalty_decision.docx").read_bytes(),
                     {**facts, "doc_number": "营环罚〔2025〕1号"}, "行政处罚决定书")
    assert data.startswith(b"PK")
