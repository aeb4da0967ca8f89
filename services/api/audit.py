"""The append-only audit log (审计日志) of the HTTP API, in the `api` database.

One entry per write (every command, replay, login, logout, token, account change) and per read of
personal data (个人信息保护法): who, role, department, when, what route and record, from where, the
outcome and whether personal data was shown in full. The API has no route that changes or deletes an
entry; the auditor reads them at `GET /api/v1/audit`.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.database import Database


def record(db: Database, *, at: datetime, actor: str | None, role: str, dept: str | None, action: str,
           route: str, method: str, client: str, status: int, target: dict | None = None,
           personal: str | None = None) -> str:
    """Append one entry (insert only); return its id."""
    entry_id = str(uuid.uuid4())
    db.audit.insert_one({"_id": entry_id, "at": at, "actor": actor, "role": role, "dept": dept,
                         "action": action, "method": method, "route": route, "target": target or {},
                         "client": client, "status": status, "personal": personal})
    return entry_id


def entries(db: Database, *, actor: str | None = None, action: str | None = None, since: datetime | None = None,
            until: datetime | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """A page of entries, newest first, with the true total; filtered by actor, action and time."""
    query: dict[str, Any] = {}
    if actor:
        query["actor"] = actor
    if action:
        query["action"] = action
    if since or until:
        query["at"] = {**({"$gte": since} if since else {}), **({"$lt": until} if until else {})}
    total = db.audit.count_documents(query)
    items = [{"id": d.pop("_id"), **d} for d in db.audit.find(query).sort([("at", DESCENDING), ("_id", 1)])
             .skip(offset).limit(limit)]
    return {"items": items, "total": total, "limit": limit, "offset": offset}
