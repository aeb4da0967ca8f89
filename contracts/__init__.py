"""Event contracts (事件契约): one cerberus schema per event type and version.

Every module in `contracts.events` exports `CONTRACTS`, a list of `EventContract`.
`contracts.catalog.Catalog` loads them all once and validates envelopes + payloads.
"""
from contracts.model import EventContract  # noqa: F401
