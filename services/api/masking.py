"""Masking of a party's personal data (个人信息保护法) in API answers.

A party (当事人) is any object under a key named `party` (or `parties`) anywhere in an answer,
including the payloads of facts in a record's history; `party_id` / `party_phone` / `party_address`
are flattened copies and masked alike, and so is a reference to a party as a subject (`subject_type`
"party" beside `subject_id`, e.g. a repeated-complaint signal). Its `id` (ID or credit code number),
`phone` and `address` are personal data. Who sees them in full is `sees_personal` (docs/api.md):
only a department user of the department that handles the case; everyone else sees them masked.
"""
from __future__ import annotations

from typing import Any

from services.kernel.manifest import DEPT_USER

PARTY_KEYS = ("party", "parties", "complainant")   # complainant: 投诉举报人 (coordination)
PERSONAL_FIELDS = ("id", "phone", "address")
# flattened copies of a party's fields elsewhere in a record (e.g. the case snapshot's `party_id`)
FLAT_KEYS = {"party_id": "id", "party_ids": "id", "party_phone": "phone", "party_address": "address"}


def mask_value(field: str, value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return value
    if field == "address":
        return value[:6] + "****" if len(value) > 6 else "****"
    if len(value) <= 4:
        return "*" * len(value)
    keep = 3 if field == "phone" else 2
    return value[:keep] + "*" * (len(value) - keep - 2) + value[-2:]


def _mask_party(party: Any) -> tuple[Any, bool]:
    if not isinstance(party, dict):
        return party, False
    out, found = dict(party), False
    for f in PERSONAL_FIELDS:
        if f in out and out[f] not in (None, ""):
            out[f], found = mask_value(f, out[f]), True
    return out, found


def mask(doc: Any) -> tuple[Any, bool]:
    """A copy of `doc` with every party's personal fields masked; and whether any was present."""
    if isinstance(doc, list):
        pairs = [mask(v) for v in doc]
        return [v for v, _ in pairs], any(f for _, f in pairs)
    if not isinstance(doc, dict):
        return doc, False
    out, found = {}, False
    for k, v in doc.items():
        if k in PARTY_KEYS:
            if isinstance(v, list):
                masked = [_mask_party(p) for p in v]
                v, hit = [m for m, _ in masked], any(h for _, h in masked)
            else:
                v, hit = _mask_party(v)
            found = found or hit
        elif k == "subject_id" and doc.get("subject_type") == "party" and v not in (None, ""):
            v, found = mask_value("id", v), True
        elif k in FLAT_KEYS and v not in (None, ""):
            field = FLAT_KEYS[k]
            v = [mask_value(field, x) for x in v] if isinstance(v, list) else mask_value(field, v)
            found = True
        if isinstance(v, (dict, list)):  # scalars (most of a list page's values) need no call
            v, hit = mask(v)
            found = found or hit
        out[k] = v
    return out, found


def has_personal(doc: Any) -> bool:
    return mask(doc)[1]


def sees_personal(role: str, user_dept: str | None, record_depts: set[str]) -> bool:
    """Full personal data only for a department user reading its own department's records."""
    return role == DEPT_USER and bool(user_dept) and bool(record_depts) and record_depts <= {user_dept}
