"""Accounts of the HTTP API: people (password + browser session) and machines (bearer tokens).

Stored in the `api` database. Passwords are hashed with Argon2id (argon2-cffi, memory-hard);
session ids, CSRF tokens and bearer tokens are 256-bit random strings kept only as SHA-256 digests.
Failed logins are counted per account + client address and lock that pair for a while (numbers in
the settings below). Used by the API service and by `zhifa user ...` (services/cli.py).
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from contracts.fields import DEPT
from services.kernel import config
from services.kernel.manifest import AUDITOR, DEPT_USER, OPERATOR, SUPERVISOR

ROLES = (SUPERVISOR, DEPT_USER, AUDITOR, OPERATOR)          # roles an account can have (public: no account)
KINDS = ("person", "machine")
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}")
MIN_PASSWORD = 10
TOKEN_PREFIX = "zfa_"

# Settings (nameko config or environment), with their defaults.
SETTINGS: dict[str, Any] = {
    "API_SESSION_HOURS": 8,             # a browser session lasts this long after login
    "API_TOKEN_DAYS": 365,              # a machine token lasts this long
    "API_LOGIN_MAX_FAILURES": 5,        # failed logins of one account from one address ...
    "API_LOGIN_WINDOW_SECONDS": 900,    # ... within this window ...
    "API_LOGIN_LOCK_SECONDS": 900,      # ... lock that pair for this long
    "API_COOKIE_SECURE": True,          # Secure cookies (set false only for local plain-http demos)
    "API_AUTH_CACHE_SECONDS": 5.0,      # a checked token / session is trusted this long without a read
}

# Argon2id, RFC 9106 "second recommended option" (64 MiB, 3 passes, 4 lanes).
_hasher = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4)


def setting(key: str) -> Any:
    value = config.get(key)
    if value is None and os.environ.get(key, "") != "":
        value = os.environ[key]
    if value is None:
        return SETTINGS[key]
    if isinstance(SETTINGS[key], bool) and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return type(SETTINGS[key])(value)


class AccountError(ValueError):
    """A bad account operation: `field`, `code`, Chinese `message`."""

    def __init__(self, field: str, code: str, message: str):
        super().__init__(message)
        self.field, self.code, self.message = field, code, message


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account, its role and department, and how it authenticated."""

    username: str
    role: str
    dept: str | None = None
    via: str = "session"                 # session | token
    session_id: str | None = None        # digest of the session (for logout)
    csrf_hash: str | None = None

    def to_dict(self) -> dict:
        return {"username": self.username, "role": self.role, "dept": self.dept, "via": self.via}


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def ensure_indexes(db: Database) -> None:
    db.sessions.create_index("expires_at")
    db.tokens.create_index("username")
    db.audit.create_index([("at", -1)])


def _check_account(username: str, role: str, dept: str | None, kind: str) -> None:
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise AccountError("username", "invalid_username", "用户名为 2–64 位字母、数字或 _ . @ -，以字母或数字开头")
    if role not in ROLES:
        raise AccountError("role", "invalid_role", f"角色只能是：{'、'.join(ROLES)}")
    if kind not in KINDS:
        raise AccountError("kind", "invalid_kind", "账户类型只能是 person 或 machine")
    if role == DEPT_USER and not (isinstance(dept, str) and re.fullmatch(DEPT["regex"], dept)):
        raise AccountError("dept", "invalid_dept", "部门用户必须指定部门编码（6位行政区划代码-部门简称）")
    if role != DEPT_USER and dept:
        raise AccountError("dept", "dept_not_allowed", "只有部门用户属于某个部门")


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD or len(password) > 256:
        raise AccountError("password", "weak_password", f"密码长度须为 {MIN_PASSWORD}–256 个字符")


def create_user(db: Database, username: str, role: str, now: datetime, *, dept: str | None = None,
                password: str | None = None, kind: str = "person") -> dict:
    """Create an account; a person gets `password`, a machine gets a first token (returned once)."""
    _check_account(username, role, dept, kind)
    doc = {"_id": username, "role": role, "dept": dept, "kind": kind, "disabled": False,
           "created_at": now, "password_hash": None}
    if kind == "person":
        _check_password(password)
        doc["password_hash"] = hash_password(password)
    try:
        db.users.insert_one(doc)
    except DuplicateKeyError:
        raise AccountError("username", "exists", f"用户 {username} 已存在") from None
    out = public_user(doc)
    if kind == "machine":
        out["token"] = issue_token(db, username, now)
    return out


def public_user(doc: dict) -> dict:
    return {"username": doc["_id"], "role": doc["role"], "dept": doc.get("dept"), "kind": doc.get("kind", "person"),
            "disabled": bool(doc.get("disabled")), "created_at": doc.get("created_at")}


def list_users(db: Database) -> list[dict]:
    return [public_user(d) for d in db.users.find({}).sort("_id", 1)]


def get_user(db: Database, username: str) -> dict | None:
    return db.users.find_one({"_id": username}) if isinstance(username, str) else None


def set_disabled(db: Database, username: str, disabled: bool = True) -> bool:
    """Disable (or enable) an account; a disabled account's sessions and tokens stop working at once."""
    res = db.users.update_one({"_id": username}, {"$set": {"disabled": disabled}})
    if disabled:
        db.sessions.delete_many({"username": username})
    forget_credentials()
    return res.matched_count == 1


def reset_password(db: Database, username: str, password: str) -> bool:
    """New password; every session of the account ends."""
    _check_password(password)
    res = db.users.update_one({"_id": username, "kind": "person"},
                              {"$set": {"password_hash": hash_password(password)}})
    db.sessions.delete_many({"username": username})
    db.login_failures.delete_many({"username": username})
    forget_credentials()
    return res.matched_count == 1


def issue_token(db: Database, username: str, now: datetime, *, rotate: bool = False) -> str:
    """A new bearer token for a machine account (shown once; only its digest is kept)."""
    user = get_user(db, username)
    if user is None or user.get("kind") != "machine":
        raise AccountError("username", "not_machine", f"用户 {username} 不是机器账户，不能签发令牌")
    if rotate:
        db.tokens.delete_many({"username": username})
        forget_credentials()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.tokens.insert_one({"_id": digest(token), "username": username, "created_at": now,
                          "expires_at": now + timedelta(days=setting("API_TOKEN_DAYS"))})
    return token


def _principal(user: dict | None, **extra) -> Principal | None:
    if user is None or user.get("disabled"):
        return None
    return Principal(user["_id"], user["role"], user.get("dept"), **extra)


# Checked tokens and sessions of this process: (database, kind, digest) -> (trusted until (monotonic),
# expires_at, principal). A request within API_AUTH_CACHE_SECONDS of the check that found it valid
# reads nothing (two finds saved per request: the token or session, and the account). So a token
# rotated, an account disabled or a password reset by another process stops working within that
# time (at once in this process: those calls clear it); a logout ends the session at once here.
# Only valid credentials are kept, at most AUTH_CACHE_MAX of them.
_auth_cache: dict[tuple[str, str, str], tuple[float, datetime, Principal]] = {}
AUTH_CACHE_MAX = 10_000


def forget_credentials() -> None:
    """Drop every cached check (an account, token or session changed in this process)."""
    _auth_cache.clear()


def _checked(db: Database, kind: str, secret_digest: str, now: datetime, load) -> Principal | None:
    import time

    key = (db.name, kind, secret_digest)
    hit = _auth_cache.get(key)
    if hit is not None and hit[0] > time.monotonic() and hit[1] > now:
        return hit[2]
    _auth_cache.pop(key, None)
    found = load()
    if found is None:
        return None
    expires_at, principal = found
    ttl = float(setting("API_AUTH_CACHE_SECONDS"))
    if principal is not None and ttl > 0:
        if len(_auth_cache) >= AUTH_CACHE_MAX:
            _auth_cache.clear()
        _auth_cache[key] = (time.monotonic() + ttl, expires_at, principal)
    return principal


def by_token(db: Database, token: str, now: datetime) -> Principal | None:
    if not token or len(token) > 200:
        return None

    def load():
        doc = db.tokens.find_one({"_id": digest(token)})
        if doc is None or _aware(doc["expires_at"]) <= now:
            return None
        return _aware(doc["expires_at"]), _principal(get_user(db, doc["username"]), via="token")

    return _checked(db, "token", digest(token), now, load)


def by_session(db: Database, session: str, now: datetime) -> Principal | None:
    if not session or len(session) > 200:
        return None

    def load():
        doc = db.sessions.find_one({"_id": digest(session)})
        if doc is None or _aware(doc["expires_at"]) <= now:
            return None
        return _aware(doc["expires_at"]), _principal(get_user(db, doc["username"]), via="session",
                                                     session_id=doc["_id"], csrf_hash=doc["csrf_hash"])

    return _checked(db, "session", digest(session), now, load)


def _aware(value: datetime) -> datetime:
    from datetime import timezone

    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class LoginRefused(Exception):
    def __init__(self, code: str, message: str, status: int, retry_after: int | None = None):
        super().__init__(message)
        self.code, self.message, self.status, self.retry_after = code, message, status, retry_after


def login(db: Database, username: str, password: str, client: str, now: datetime) -> tuple[Principal, str, str]:
    """Check a password (throttled per account + client address); return (principal, session, csrf)."""
    key = f"{username}|{client}"
    failures = db.login_failures.find_one({"_id": key})
    if failures and failures.get("locked_until") and _aware(failures["locked_until"]) > now:
        wait = int((_aware(failures["locked_until"]) - now).total_seconds()) + 1
        raise LoginRefused("too_many_attempts", f"登录失败次数过多，请 {wait} 秒后再试", 429, wait)
    user = get_user(db, username)
    ok = False
    if user is not None and user.get("kind") == "person" and user.get("password_hash"):
        try:
            ok = _hasher.verify(user["password_hash"], password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
    else:
        try:  # same work for unknown users: no timing oracle for which usernames exist
            _hasher.verify(_dummy_hash(), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            pass
    if not ok or user.get("disabled"):
        _count_failure(db, key, username, now)
        raise LoginRefused("invalid_credentials", "用户名或密码错误，或账户已停用", 401)
    db.login_failures.delete_one({"_id": key})
    if _hasher.check_needs_rehash(user["password_hash"]):
        db.users.update_one({"_id": username}, {"$set": {"password_hash": hash_password(password)}})
    session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    db.sessions.insert_one({"_id": digest(session), "username": username, "csrf_hash": digest(csrf),
                            "created_at": now, "client": client,
                            "expires_at": now + timedelta(hours=setting("API_SESSION_HOURS"))})
    return _principal(user, via="session", session_id=digest(session), csrf_hash=digest(csrf)), session, csrf


_dummy: list[str] = []


def _dummy_hash() -> str:
    """A hash to verify against for unknown accounts (made once, on first use)."""
    if not _dummy:
        _dummy.append(_hasher.hash("zhifa-no-such-user-password"))
    return _dummy[0]


def _count_failure(db: Database, key: str, username: str, now: datetime) -> None:
    window = timedelta(seconds=setting("API_LOGIN_WINDOW_SECONDS"))
    doc = db.login_failures.find_one_and_update(
        {"_id": key}, {"$inc": {"count": 1}, "$setOnInsert": {"first_at": now, "username": username}},
        upsert=True, return_document=ReturnDocument.AFTER)
    if _aware(doc["first_at"]) < now - window:  # an old window: start counting again
        db.login_failures.update_one({"_id": key}, {"$set": {"count": 1, "first_at": now, "locked_until": None}})
        return
    if doc["count"] >= setting("API_LOGIN_MAX_FAILURES"):
        db.login_failures.update_one({"_id": key}, {"$set": {
            "locked_until": now + timedelta(seconds=setting("API_LOGIN_LOCK_SECONDS")), "count": 0, "first_at": now}})


def logout(db: Database, principal: Principal) -> None:
    if principal.session_id:
        db.sessions.delete_one({"_id": principal.session_id})
        _auth_cache.pop((db.name, "session", principal.session_id), None)


def ensure_user(db: Database, username: str, role: str, now: datetime, *, dept: str | None = None,
                password: str | None = None, kind: str = "person") -> dict | None:
    """Create the account unless it exists (demo accounts); the created account, or None."""
    if get_user(db, username) is not None:
        return None
    try:
        return create_user(db, username, role, now, dept=dept, password=password, kind=kind)
    except AccountError as exc:
        if exc.code == "exists":
            return None
        raise
