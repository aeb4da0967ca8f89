"""Coordination and supervision (司法局协调监督): pure domain — findings inbox, supervision cases.

No I/O, no framework, no wall clock: every rule is a function of (facts, settings, as_of).
"""
from services.coordination.domain import inbox, supervision
from services.coordination.domain.settings import DEFAULT_SETTINGS, DOC_KINDS, CoordinationSettings

__all__ = ["inbox", "supervision", "CoordinationSettings", "DEFAULT_SETTINGS", "DOC_KINDS"]
