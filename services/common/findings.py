"""Findings (监督发现): the one shape every rule in every service produces."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SEVERITIES = ("info", "warning", "serious", "critical")
# Most severe first: sort findings by SEVERITY_RANK[f["severity"]] (unknown severities last).
SEVERITY_RANK = {"critical": 0, "serious": 1, "warning": 2, "info": 3}


@dataclass(frozen=True)
class Finding:
    """A rule breach or risk found for one subject at one time."""

    rule_id: str
    severity: str
    dept: str
    subject_type: str
    subject_id: str
    as_of: datetime
    evidence: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    @property
    def key(self) -> str:
        """Stable identity: the same breach of the same rule on the same subject."""
        return f"{self.rule_id}:{self.subject_type}:{self.subject_id}"

    def to_payload(self) -> dict[str, Any]:
        return {
            "finding_key": self.key,
            "rule_id": self.rule_id,
            "severity": self.severity,
            "dept": self.dept,
            "subject_type": self.subject_type,
            "subject_id": self.subject_id,
            "as_of": self.as_of.isoformat(),
            "evidence": dict(self.evidence),
            "message": self.message,
        }


def diff_findings(before: dict[str, dict], after: list[Finding]) -> tuple[list[Finding], list[str]]:
    """Compare open findings (key -> payload) with a fresh evaluation.

    Returns (newly raised, keys resolved). Re-running rules is therefore idempotent.
    """
    after_keys = {f.key for f in after}
    raised = [f for f in after if f.key not in before]
    resolved = [k for k in before if k not in after_keys]
    return raised, resolved
