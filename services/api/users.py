"""Accounts from the command line (`zhifa user create|list|disable|reset`) and the demo accounts that
`make run` creates (services/launcher.py). Both write the `api` database directly (services/api/accounts.py)."""
from __future__ import annotations

import argparse
import getpass
import json
import os
import secrets
import sys
from typing import TextIO

from services.api import accounts, audit
from services.api.accounts import AccountError

# (username, role, department, password): local demo only (`make run`), never in production
DEMO_ACCOUNTS = (
    ("demo-supervisor", "supervisor", None, "zhifa-demo-supervisor"),
    ("demo-scjg", "dept_user", "511322-scjg", "zhifa-demo-scjg"),
    ("demo-sthj", "dept_user", "511322-sthj", "zhifa-demo-sthj"),
    ("demo-auditor", "auditor", None, "zhifa-demo-auditor"),
    ("demo-operator", "operator", None, "zhifa-demo-operator"),
)
ROLE_LABELS = {"supervisor": "司法局监督人员", "dept_user": "部门用户", "auditor": "审计人员", "operator": "运维人员"}


def api_db(mongo_uri: str | None = None, prefix: str | None = None):
    from services.kernel.mongo import make_client

    client = make_client(mongo_uri or os.environ.get("MONGO_URI") or "mongodb://127.0.0.1:27017/", 5000)
    db = client[f"{prefix if prefix is not None else os.environ.get('DB_PREFIX', 'zhifa_')}api"]
    accounts.ensure_indexes(db)
    return db


def ensure_demo_accounts(db) -> list[tuple[str, str, str | None, str]]:
    """Create the demo accounts that do not exist yet (idempotent); return every demo account."""
    from services.kernel.clock import utcnow

    for username, role, dept, password in DEMO_ACCOUNTS:
        accounts.ensure_user(db, username, role, utcnow(), dept=dept, password=password)
    return list(DEMO_ACCOUNTS)


def print_api(base: str, demo: bool = True, out: TextIO | None = None) -> None:
    """What `make run` prints about the HTTP API: its URL, the OpenAPI document and the demo accounts
    (created here when `demo`, idempotently)."""
    out = out or sys.stdout
    out.write(f"  HTTP API        {base}/api/v1/   (OpenAPI: {base}/api/v1/openapi.json)\n")
    if not demo:
        out.write("  accounts        zhifa user create NAME --role ROLE [--dept DEPT]\n")
        return
    try:
        made = ensure_demo_accounts(api_db())
    except Exception as exc:  # the suite runs on; say why there are no demo accounts
        out.write(f"  demo accounts   not created ({type(exc).__name__}); use `zhifa user create`\n")
        return
    out.write("  demo accounts   (POST /api/v1/auth/login with username + password; local demo only)\n")
    for username, role, dept, password in made:
        out.write(f"    {username:<16} {password:<24} {ROLE_LABELS[role]}{'，' + dept if dept else ''}\n")


def _now():
    from services.kernel.clock import utcnow

    return utcnow()


def _password(args, out: TextIO) -> tuple[str, bool]:
    """The password from stdin (--password-stdin), a prompt (a terminal), or a generated one (shown once)."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n"), False
    if sys.stdin.isatty():
        first = getpass.getpass("新密码：")
        if first != getpass.getpass("再次输入："):
            raise AccountError("password", "mismatch", "两次输入的密码不一致")
        return first, False
    return secrets.token_urlsafe(15), True


def _audit(db, action: str, username: str, status: int = 200) -> None:
    """Account changes from the CLI go to the same append-only audit log as the API's."""
    try:
        who = getpass.getuser()
    except Exception:  # no login name in some containers
        who = "unknown"
    audit.record(db, at=_now(), actor=f"cli:{who}", role="administrator", dept=None, action=action,
                 route=f"zhifa user {action.removeprefix('user_')}", method="CLI", client="cli", status=status,
                 target={"username": username})


def cmd_user(args, out: TextIO) -> int:
    db = api_db(args.mongo_uri, args.db_prefix)
    try:
        if args.action == "create":
            password, generated = (None, False) if args.machine else _password(args, out)
            made = accounts.create_user(db, args.username, args.role, _now(), dept=args.dept, password=password,
                                        kind="machine" if args.machine else "person")
            _audit(db, "user_create", args.username)
            out.write(f"已创建用户 {args.username}（{ROLE_LABELS[args.role]}{'，' + args.dept if args.dept else ''}）\n")
            if generated:
                out.write(f"初始密码（只显示这一次）：{password}\n")
            if made.get("token"):
                out.write(f"访问令牌（只显示这一次）：{made['token']}\n")
        elif args.action == "list":
            users = accounts.list_users(db)
            if args.json:
                for u in users:
                    out.write(json.dumps({**u, "created_at": str(u["created_at"])}, ensure_ascii=False) + "\n")
            else:
                for u in users:
                    state = "停用" if u["disabled"] else "正常"
                    out.write(f"{u['username']:<24} {u['role']:<11} {u['dept'] or '-':<16} {u['kind']:<8} {state}\n")
        elif args.action == "disable":
            if not accounts.set_disabled(db, args.username, not args.enable):
                out.write(f"用户 {args.username} 不存在\n")
                return 1
            _audit(db, "user_enable" if args.enable else "user_disable", args.username)
            out.write(f"已{'启用' if args.enable else '停用'}用户 {args.username}\n")
        elif args.action == "reset":
            user = accounts.get_user(db, args.username)
            if user is None:
                out.write(f"用户 {args.username} 不存在\n")
                return 1
            if user.get("kind") == "machine":
                token = accounts.issue_token(db, args.username, _now(), rotate=True)
                _audit(db, "user_reset", args.username)
                out.write(f"已作废旧令牌。新访问令牌（只显示这一次）：{token}\n")
            else:
                password, generated = _password(args, out)
                accounts.reset_password(db, args.username, password)
                _audit(db, "user_reset", args.username)
                out.write(f"已重置用户 {args.username} 的密码，其全部会话已失效\n")
                if generated:
                    out.write(f"新密码（只显示这一次）：{password}\n")
    except AccountError as exc:
        out.write(f"错误（{exc.field}）：{exc.message}\n")
        return 2
    return 0


def add_parser(sub) -> None:
    """`zhifa user ...` (added to the CLI's subcommands by services/cli.py)."""
    user = sub.add_parser("user", help="管理 HTTP 接口的账户（创建、列出、停用、重置）")
    user.add_argument("--mongo-uri", default=None, help="数据库地址（默认取 MONGO_URI）")
    user.add_argument("--db-prefix", default=None, help="数据库名前缀（默认取 DB_PREFIX，缺省 zhifa_）")
    actions = user.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="创建账户：人员（密码）或机器（访问令牌）")
    create.add_argument("username")
    create.add_argument("--role", required=True, choices=accounts.ROLES,
                        help="supervisor 司法局监督 | dept_user 部门用户 | auditor 审计 | operator 运维")
    create.add_argument("--dept", help="部门用户所属部门，如 511322-scjg")
    create.add_argument("--machine", action="store_true", help="机器账户：签发访问令牌，不设密码")
    create.add_argument("--password-stdin", action="store_true", help="从标准输入读取密码（一行）")
    lst = actions.add_parser("list", help="列出账户")
    lst.add_argument("--json", action="store_true")
    disable = actions.add_parser("disable", help="停用账户（其会话和令牌立即失效）")
    disable.add_argument("username")
    disable.add_argument("--enable", action="store_true", help="重新启用")
    reset = actions.add_parser("reset", help="重置人员密码（或轮换机器账户的令牌）")
    reset.add_argument("username")
    reset.add_argument("--password-stdin", action="store_true", help="从标准输入读取新密码（一行）")
    user.set_defaults(func=cmd_user)


if __name__ == "__main__":  # `python -m services.api.users ...`
    root = argparse.ArgumentParser(prog="zhifa")
    add_parser(root.add_subparsers(dest="command", required=True))
    parsed = root.parse_args()
    sys.exit(parsed.func(parsed, sys.stdout))
