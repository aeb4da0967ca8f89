"""Who is publishing: AMQP `user_id` and HTTP bearer tokens, mapped to a department.

AMQP: RabbitMQ refuses a message whose `user_id` property differs from the connection's user,
so `user_id` is a broker-verified identity. A user named like a dept code (`511322-scjg`) is
that department: the routing key and the envelope must then name the same dept. Users listed
in INGRESS_TRUSTED_USERS (default: guest) are the suite's own publishers: the routing key's
dept stands. Any other user is refused. A message without `user_id` is refused when
INGRESS_REQUIRE_USER_ID is true (recommended in production); otherwise the routing key's dept
stands, as it always did (the local demo).

HTTP: `Authorization: Bearer <token>` resolves to a dept through the `dept_tokens` collection,
which stores only a SHA-256 of each token. A valid token always wins over the X-Zhifa-Dept
header; an unknown token is always a 401. Without a token the request is refused (401) when
HTTP_REQUIRE_TOKEN is true, and otherwise the X-Zhifa-Dept header is taken at its word.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from contracts.catalog import Violation
from contracts.fields import DEPT
from services.kernel import config

TOKENS = "dept_tokens"
TOKEN_PREFIX = "zf_"
DEPT_USER = re.compile(DEPT["regex"])

# Settings this module reads, with their defaults (see `setting`).
SETTINGS: dict[str, Any] = {
    "INGRESS_REQUIRE_USER_ID": False,
    "INGRESS_TRUSTED_USERS": ["guest"],
    "HTTP_REQUIRE_TOKEN": False,
}


def setting(key: str) -> Any:
    """nameko config first, then the environment (YAML-parsed), then the default above."""
    value = config.get(key)
    if value is None and os.environ.get(key, "") != "":
        value = yaml.safe_load(os.environ[key])
    return SETTINGS[key] if value is None else value


def flag(key: str) -> bool:
    value = setting(key)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def trusted_users() -> set[str]:
    value = setting("INGRESS_TRUSTED_USERS")
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    return {str(v) for v in value or [] if str(v)}


def is_dept_user(user: str) -> bool:
    return bool(DEPT_USER.fullmatch(user))


# ---- AMQP -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class AmqpIdentity:
    """The outcome for one message: the authenticated dept (None: routing key decides) or a refusal."""

    dept: str | None = None
    refusal: Violation | None = None


def amqp_identity(user_id: str | None) -> AmqpIdentity:
    """Map the broker-verified `user_id` property of an ingress message to a department."""
    user = user_id.decode() if isinstance(user_id, bytes) else (user_id or "")
    if not user:
        if flag("INGRESS_REQUIRE_USER_ID"):
            return AmqpIdentity(refusal=Violation(
                "$publisher", "missing_user_id", "消息缺少 user_id 属性：请将 user_id 设置为本部门的消息服务用户名"))
        return AmqpIdentity()
    if is_dept_user(user):
        return AmqpIdentity(dept=user)
    if user in trusted_users():
        return AmqpIdentity()
    return AmqpIdentity(refusal=Violation(
        "$publisher", "unknown_publisher", f"发布用户 {user[:64]} 既不是部门用户，也不是受信任的内部用户"))


# ---- HTTP tokens ------------------------------------------------------------------------------
def hash_token(token: str) -> str:
    """Tokens are 256-bit random strings, so an unsalted SHA-256 is enough to keep them unusable at rest."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def ensure_token_indexes(db: Database) -> None:
    db[TOKENS].create_index("token_hash", unique=True)


def issue_token(db: Database, dept: str, now: datetime, *, rotate: bool = False) -> str | None:
    """Give `dept` a token and return it (shown once); None when it has one and `rotate` is false."""
    ensure_token_indexes(db)
    existing = db[TOKENS].find_one({"_id": dept})
    if existing is not None and not rotate:
        return None
    token = new_token()
    fields = {"token_hash": hash_token(token), "rotated_at": now}
    if existing is None:
        try:
            db[TOKENS].insert_one({"_id": dept, "created_at": now, **fields})
            return token
        except DuplicateKeyError:  # created concurrently: keep theirs unless rotating
            if not rotate:
                return None
    db[TOKENS].update_one({"_id": dept}, {"$set": fields})
    return token


def token_dept(db: Database, token: str) -> str | None:
    """The department a token belongs to, or None."""
    if not token or len(token) > 200:
        return None
    doc = db[TOKENS].find_one({"token_hash": hash_token(token)}, {"_id": 1})
    return doc["_id"] if doc else None


class Unauthorized(Exception):
    """An HTTP caller that must not be served; `response()` is the 401 to send."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def response(self):
        from services.kernel.web import error  # werkzeug/nameko only where HTTP is served

        resp = error(401, self.code, self.message)
        resp.headers["WWW-Authenticate"] = 'Bearer realm="zhifa"'
        return resp


def bearer_token(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if not header:
        return None
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("invalid_token", "Authorization 头格式应为：Bearer <令牌>")
    return value.strip()


def http_dept(request, db: Database) -> str | None:
    """The department an HTTP ingress request speaks for (None: no claim), or raise Unauthorized."""
    token = bearer_token(request)
    if token is not None:
        dept = token_dept(db, token)
        if dept is None:
            raise Unauthorized("invalid_token", "访问令牌无效或已被轮换，请向平台管理员申请新令牌")
        return dept
    if flag("HTTP_REQUIRE_TOKEN"):
        raise Unauthorized("missing_token", "缺少访问令牌：请在 Authorization 头中提供 Bearer <部门令牌>")
    return request.headers.get("X-Zhifa-Dept") or None


# ---- secure by default outside the demo ---------------------------------------------------------
def _loopback(host: str) -> bool:
    import ipaddress

    host = (host or "").strip().strip("[]")
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve to anything


def startup_warnings() -> list[str]:
    """What the gateway says at start when it serves beyond loopback with authentication off
    (docs/integration.md, production checklist). An empty list on a demo bound to 127.0.0.1."""
    from urllib.parse import urlparse

    out: list[str] = []
    web_host = str(config.get("WEB_SERVER_ADDRESS") or "").rpartition(":")[0]
    amqp = urlparse(str(config.get("AMQP_URI") or ""))
    if not _loopback(web_host) and not flag("HTTP_REQUIRE_TOKEN"):
        out.append(f"HTTP ingress listens on {web_host} with HTTP_REQUIRE_TOKEN off: any caller can claim a "
                   "department with the X-Zhifa-Dept header; set HTTP_REQUIRE_TOKEN=true")
    if not _loopback(amqp.hostname or ""):
        if not flag("INGRESS_REQUIRE_USER_ID"):
            out.append(f"broker {amqp.hostname} is not on loopback and INGRESS_REQUIRE_USER_ID is off: a message "
                       "without user_id speaks for the department in its routing key; set INGRESS_REQUIRE_USER_ID=true")
        if "guest" in trusted_users():
            out.append("INGRESS_TRUSTED_USERS includes guest: remove it and run the suite under its own broker user")
        if (amqp.username or "guest") == "guest":
            out.append("the suite connects to a non-loopback broker as guest: create a user with a strong password")
        if not config.get("INTERNAL_KEY"):
            out.append("INTERNAL_KEY is not set: retry headers are signed with a key derived from AMQP_URI; "
                       "set a random INTERNAL_KEY shared by every process")
    return out
