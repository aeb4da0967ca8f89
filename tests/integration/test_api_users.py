"""Accounts from the CLI (`zhifa user ...`) and the demo accounts of `make run`, used against the real API."""
import getpass
import io

import requests

from services.api.users import DEMO_ACCOUNTS, ensure_demo_accounts
from services.cli import main
from tests.api_kit import start_api
from tests.helpers import SCJG


def zhifa(config, monkeypatch, *argv, stdin: str = "") -> tuple[int, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out = io.StringIO()
    code = main(["user", "--mongo-uri", config["MONGO_URI"], "--db-prefix", config["DB_PREFIX"], *argv], out=out)
    return code, out.getvalue()


def login(kit, username, password):
    return requests.post(f"{kit.base}/api/v1/auth/login", json={"username": username, "password": password},
                         timeout=10)


def test_user_create_list_disable_reset_from_the_cli(zhifa_config, container_factory, monkeypatch):
    kit = start_api(zhifa_config, container_factory)
    code, text = zhifa(zhifa_config, monkeypatch, "create", "wang.fang", "--role", "dept_user", "--dept", SCJG,
                       "--password-stdin", stdin="first password 1\n")
    assert code == 0 and "已创建用户 wang.fang" in text
    assert login(kit, "wang.fang", "first password 1").json()["user"]["dept"] == SCJG
    assert zhifa(zhifa_config, monkeypatch, "create", "wang.fang", "--role", "auditor",
                 "--password-stdin", stdin="another password\n") == (2, "错误（username）：用户 wang.fang 已存在\n")
    assert zhifa(zhifa_config, monkeypatch, "create", "x", "--role", "dept_user", "--password-stdin",
                 stdin="long enough pw\n")[0] == 2
    bad = zhifa(zhifa_config, monkeypatch, "create", "zhao", "--role", "dept_user", "--password-stdin", stdin="pw\n")
    assert bad[0] == 2 and "dept" in bad[1]

    code, text = zhifa(zhifa_config, monkeypatch, "create", "ledger-bot", "--role", "auditor", "--machine")
    token = text.split("访问令牌（只显示这一次）：")[1].strip()
    me = requests.get(f"{kit.base}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert me.json()["user"] == {"username": "ledger-bot", "role": "auditor", "dept": None, "via": "token"}
    assert token not in str(list(kit.db.tokens.find({})))  # only the digest is stored

    code, text = zhifa(zhifa_config, monkeypatch, "list")
    line = next(ln for ln in text.splitlines() if ln.startswith("wang.fang"))
    assert "dept_user" in line and SCJG in line and "正常" in line

    assert zhifa(zhifa_config, monkeypatch, "disable", "wang.fang")[0] == 0
    assert login(kit, "wang.fang", "first password 1").status_code == 401
    assert zhifa(zhifa_config, monkeypatch, "disable", "wang.fang", "--enable")[0] == 0
    assert zhifa(zhifa_config, monkeypatch, "reset", "wang.fang", "--password-stdin", stdin="second password 2\n")[0] == 0
    assert login(kit, "wang.fang", "first password 1").status_code == 401
    assert login(kit, "wang.fang", "second password 2").status_code == 200
    code, text = zhifa(zhifa_config, monkeypatch, "reset", "ledger-bot")
    assert code == 0 and requests.get(f"{kit.base}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"},
                                      timeout=10).status_code == 401
    assert zhifa(zhifa_config, monkeypatch, "reset", "nobody")[0] == 1
    # account changes are audited, from the CLI and from the API's token route
    sup_token = kit.post("/api/v1/auth/tokens", {"username": "ledger-bot"}, as_="sup")
    assert sup_token.status_code == 200 and sup_token.json()["token"].startswith("zfa_")
    assert kit.get("/api/v1/audit", as_="aud", action="create_token").json()["total"] == 1
    changes = sorted((e["action"], e["target"]["username"]) for e in kit.get("/api/v1/audit", as_="aud").json()["items"]
                     if e["action"].startswith("user_"))
    assert changes == sorted([("user_create", "wang.fang"), ("user_create", "ledger-bot"), ("user_disable", "wang.fang"),
                       ("user_enable", "wang.fang"), ("user_reset", "wang.fang"), ("user_reset", "ledger-bot")])
    assert {e["actor"] for e in kit.get("/api/v1/audit", as_="aud", action="user_create").json()["items"]} \
        == {f"cli:{getpass.getuser()}"}


def test_demo_accounts_are_created_once_and_each_role_can_log_in(zhifa_config, container_factory):
    kit = start_api(zhifa_config, container_factory)
    ensure_demo_accounts(kit.db)
    hashes = {u["_id"]: u["password_hash"] for u in kit.db.users.find({"_id": {"$regex": "^demo-"}})}
    ensure_demo_accounts(kit.db)  # idempotent: nothing re-created or re-hashed
    assert {u["_id"]: u["password_hash"] for u in kit.db.users.find({"_id": {"$regex": "^demo-"}})} == hashes
    roles = set()
    for username, role, dept, password in DEMO_ACCOUNTS:
        resp = login(kit, username, password)
        assert resp.status_code == 200, resp.text
        assert resp.json()["user"]["role"] == role and resp.json()["user"]["dept"] == dept
        roles.add(role)
    assert roles == {"supervisor", "dept_user", "auditor", "operator"}


def test_make_run_prints_the_api_url_and_the_demo_accounts(zhifa_config, container_factory, monkeypatch):
    from services.api.users import print_api

    kit = start_api(zhifa_config, container_factory)
    monkeypatch.setenv("MONGO_URI", zhifa_config["MONGO_URI"])
    monkeypatch.setenv("DB_PREFIX", zhifa_config["DB_PREFIX"])
    out = io.StringIO()
    print_api(kit.base, demo=True, out=out)
    text = out.getvalue()
    assert f"{kit.base}/api/v1/openapi.json" in text
    for username, _, _, password in DEMO_ACCOUNTS:
        assert f"{username}" in text and password in text
        assert login(kit, username, password).status_code == 200
