"""Provision a department: its RabbitMQ user and permissions, and its HTTP ingress token.

Through the RabbitMQ management HTTP API (RABBIT_MGMT_URI) on the virtual host of AMQP_URI:

- a user named after the dept code, no tags (no management access);
- permissions on the vhost: configure only its own server-named queues (`amq.gen-…`) and queues
  named `<dept>.…`; write `ingress` and those queues; read those queues and `ingress.rejections`;
- topic permissions: on `ingress` it may publish only routing keys `<dept>.…`; on
  `ingress.rejections` it may bind only the key `<dept>` (so it reads only its own notices).

And a random HTTP token, of which only a SHA-256 is stored in `<DB_PREFIX>gateway.dept_tokens`.

Idempotent: permissions are re-applied on every run; the password changes only when one is
given (a new user gets a random one); the token changes only with `rotate_token`. Secrets are
returned (and printed by the script) only when they were set by this run.
"""
from __future__ import annotations

import base64
import json
import os
import re
import secrets
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pymongo

from contracts.fields import DEPT
from services.gateway.auth import issue_token
from services.kernel.config import load_config

DEFAULT_MGMT_URI = "http://guest:guest@127.0.0.1:15672"
INGRESS = "ingress"
REJECTIONS = "ingress.rejections"
NOTHING = "^$"  # a regex no exchange or queue name matches (names are never empty here)


class ProvisionError(Exception):
    """The broker or the database refused a provisioning step; the message says which."""


@dataclass
class Provisioned:
    dept: str
    user: str
    vhost: str
    amqp_uri: str  # without password
    user_created: bool
    password: str | None  # set by this run, else None (unchanged)
    token: str | None  # issued by this run, else None (unchanged)

    def to_dict(self) -> dict:
        return asdict(self)


def vhost_of(amqp_uri: str) -> str:
    """The virtual host an AMQP URI names, as kombu reads it ('' and '/' are the default vhost)."""
    path = urlsplit(amqp_uri).path
    name = unquote(path[1:]) if path.startswith("/") else unquote(path)
    return name or "/"


def checked_dept(dept: str) -> str:
    """A dept code, verified: it is used verbatim as a user name and inside permission regexes
    (its alphabet, digits, lower-case letters, `_` and `-`, has no regex metacharacters)."""
    if not isinstance(dept, str) or len(dept) > DEPT["maxlength"] or not re.fullmatch(DEPT["regex"], dept):
        raise ProvisionError(f"部门代码 {dept!r} 格式不正确，应形如 511322-scjg")
    return dept


def dept_permissions(dept: str) -> dict[str, str]:
    """Regular permissions (configure/write/read regexes) of a department's user."""
    own = rf"amq\.gen-.*|{checked_dept(dept)}\..*"
    return {
        "configure": rf"^({own})$",
        "write": rf"^({re.escape(INGRESS)}|{own})$",
        "read": rf"^({re.escape(REJECTIONS)}|{own})$",
    }


def dept_topic_permissions(dept: str) -> list[dict[str, str]]:
    """Topic permissions: publish `<dept>.*` on ingress; bind only `<dept>` on the rejections exchange."""
    dept = checked_dept(dept)
    return [
        {"exchange": INGRESS, "write": rf"^{dept}\.", "read": NOTHING},
        {"exchange": REJECTIONS, "write": NOTHING, "read": rf"^{dept}$"},
    ]


class Management:
    """The few RabbitMQ management API calls provisioning needs (stdlib HTTP, basic auth)."""

    def __init__(self, uri: str, timeout: float = 10):
        parts = urlsplit(uri)
        netloc = parts.hostname or "127.0.0.1"
        if parts.port:
            netloc += f":{parts.port}"
        self.base = urlunsplit((parts.scheme or "http", netloc, parts.path.rstrip("/"), "", ""))
        creds = f"{unquote(parts.username or 'guest')}:{unquote(parts.password or 'guest')}"
        self.auth = "Basic " + base64.b64encode(creds.encode()).decode()
        self.timeout = timeout

    def request(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": self.auth, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                text = resp.read().decode() or "null"
                return json.loads(text) if resp.headers.get_content_type() == "application/json" else None
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and method == "GET":
                return None
            detail = exc.read().decode(errors="replace")[:300]
            raise ProvisionError(f"消息服务管理接口 {method} {path} 返回 {exc.code}：{detail}") from None
        except OSError as exc:
            raise ProvisionError(f"无法连接消息服务管理接口 {self.base}：{exc}") from None

    def user_exists(self, name: str) -> bool:
        return self.request("GET", f"/api/users/{quote(name, safe='')}") is not None

    def put_user(self, name: str, password: str) -> None:
        self.request("PUT", f"/api/users/{quote(name, safe='')}", {"password": password, "tags": ""})

    def vhost_exists(self, vhost: str) -> bool:
        return self.request("GET", f"/api/vhosts/{quote(vhost, safe='')}") is not None

    def set_permissions(self, vhost: str, user: str, perms: dict[str, str]) -> None:
        self.request("PUT", f"/api/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}", perms)

    def set_topic_permission(self, vhost: str, user: str, perm: dict[str, str]) -> None:
        self.request("PUT", f"/api/topic-permissions/{quote(vhost, safe='')}/{quote(user, safe='')}", perm)


def public_amqp_uri(amqp_uri: str, user: str) -> str:
    """The AMQP URI a department connects with, password left for them to fill in."""
    parts = urlsplit(amqp_uri)
    netloc = f"{quote(user, safe='')}:<password>@{parts.hostname or '127.0.0.1'}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme or "amqp", netloc, parts.path or "/", parts.query, ""))


def provision_dept(dept: str, password: str | None = None, *, rotate_token: bool = False,
                   mgmt_uri: str | None = None, amqp_uri: str | None = None, mongo_uri: str | None = None,
                   db_prefix: str | None = None, now: datetime | None = None) -> Provisioned:
    """Create or update a department's broker user, permissions and HTTP token (see module doc)."""
    checked_dept(dept)
    settings = load_config()
    mgmt_uri = mgmt_uri or os.environ.get("RABBIT_MGMT_URI") or DEFAULT_MGMT_URI
    amqp_uri = amqp_uri or settings["AMQP_URI"]
    mongo_uri = mongo_uri or settings["MONGO_URI"]
    db_prefix = settings["DB_PREFIX"] if db_prefix is None else db_prefix
    vhost = vhost_of(amqp_uri)

    mgmt = Management(mgmt_uri)
    if not mgmt.vhost_exists(vhost):
        raise ProvisionError(f"虚拟主机 {vhost} 不存在：请先启动平台（网关会声明交换机）或创建该虚拟主机")
    created = not mgmt.user_exists(dept)
    if created and password is None:
        password = secrets.token_urlsafe(24)
    if password is not None:
        mgmt.put_user(dept, password)
    mgmt.set_permissions(vhost, dept, dept_permissions(dept))
    for perm in dept_topic_permissions(dept):
        mgmt.set_topic_permission(vhost, dept, perm)

    client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000, tz_aware=True, appname="zhifa-provision")
    try:
        token = issue_token(client[f"{db_prefix}gateway"], dept, now or datetime.now(timezone.utc),
                            rotate=rotate_token)
    except Exception as exc:  # pymongo errors: say where, keep the broker part done
        raise ProvisionError(f"无法在数据库中保存访问令牌（{mongo_uri}）：{exc}") from None
    finally:
        client.close()
    return Provisioned(dept=dept, user=dept, vhost=vhost, amqp_uri=public_amqp_uri(amqp_uri, dept),
                       user_created=created, password=password, token=token)


def describe(result: Provisioned) -> str:
    """What the operator hands to the department, in Chinese; secrets appear only once."""
    lines = [
        f"部门 {result.dept} 已{'创建' if result.user_created else '更新'}",
        f"  消息服务用户 (AMQP user / user_id)：{result.user}",
        f"  虚拟主机 (vhost)：{result.vhost}",
        f"  连接地址 (AMQP URI)：{result.amqp_uri}",
        f"  密码 (password)：{result.password}" if result.password else "  密码：未改变（如需重置请加 --password）",
        f"  HTTP 访问令牌 (token)：{result.token}" if result.token
        else "  HTTP 访问令牌：未改变（如需轮换请加 --rotate-token）",
    ]
    if result.password or result.token:
        lines.append("请立即妥善转交上述密码和令牌：平台只保存令牌的摘要，不会再次显示。")
    return "\n".join(lines)
