"""Label values from outside are bounded: malformed or unknown values become "unknown", and past the
cap new values count as "other" — a hostile publisher cannot create unbounded series."""
from services.kernel import metrics


def test_malformed_or_unknown_values_are_unknown():
    assert metrics.bounded("t-dept", "511322-scjg") == "511322-scjg"
    assert metrics.bounded("t-dept", "") == "unknown"
    assert metrics.bounded("t-dept", None) == "unknown"
    assert metrics.bounded("t-dept", 'x"} evil{') == "unknown"
    assert metrics.bounded("t-dept", "a" * 65) == "unknown"
    assert metrics.bounded("t-type", "case.filed", known={"case.filed"}) == "case.filed"
    assert metrics.bounded("t-type", "case.invented", known={"case.filed"}) == "unknown"


def test_distinct_values_are_capped_per_label(monkeypatch):
    monkeypatch.setattr(metrics, "MAX_LABEL_VALUES", 3)
    monkeypatch.setattr(metrics, "_seen_values", {})
    got = [metrics.bounded("dept", f"51132{i}-x") for i in range(5)]
    assert got == ["511320-x", "511321-x", "511322-x", "other", "other"]
    assert metrics.bounded("dept", "511321-x") == "511321-x"  # a value already seen stays itself
