"""The HTTP API against real servers: every route of the OpenAPI document with every role, department
isolation, masking of personal data, the audit log, sessions with CSRF, login throttling."""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from services.api import accounts
from services.api.openapi import document
from services.gateway.service import GatewayService
from services.kernel.clock import utcnow
from services.penalty.service import PenaltyService
from services.personnel.service import PersonnelService
from services.registry.service import RegistryService
from tests.api_kit import start_api, start_declared
from tests.helpers import SCJG, STHJ, credential_issued, envelope, officer_registered, wait_for
from tests.integration.test_penalty import CODE, db, item_published, land, now, standard_published, story

SCJG_OFF, STHJ_OFF = "511322-scjg-0201", "511322-sthj-0301"
SCJG_CASE, STHJ_CASE = "511322-scjg-2026-0201", "511322-sthj-2026-0301"
PARTY = {"type": "person", "id": "513022199001011234", "name": "王五"}


@pytest.fixture
def county(zhifa_config, container_factory):
    """Gateway, personnel, registry, penalty and the API; an officer and a case in each of two departments
    (the SCJG case's party is a person with an ID number)."""
    start_declared(container_factory)  # every declared service: every route of the document has its backend
    kit = start_api(zhifa_config, container_factory)
    s = {"amqp": zhifa_config["AMQP_URI"], "config": zhifa_config}
    land(s, "registry", "items", item_published(), standard_published())
    land(s, "personnel", "officers", officer_registered(SCJG_OFF), credential_issued(SCJG_OFF, "川A5113220201"))
    land(s, "personnel", "officers", officer_registered(STHJ_OFF, dept=STHJ),
         credential_issued(STHJ_OFF, "川A5113220301", dept=STHJ))
    scjg_story = story(SCJG_CASE, officers=(SCJG_OFF,), n=21)
    for env in scjg_story:
        if "party" in env["payload"]:
            env["payload"]["party"] = dict(PARTY)
    land(s, "penalty", "cases", *scjg_story[:2])
    sthj_filed = envelope("case.filed", {"case_id": STHJ_CASE, "item_code": CODE, "case_no": "营环立〔2026〕1号",
                                         "party": {"type": "org", "id": "91511322MA3C4X9999", "name": "某化工厂"},
                                         "summary": "超标排放"}, STHJ, occurred_at=now().isoformat())
    land(s, "penalty", "cases", sthj_filed)
    return kit


SAMPLE_PATH = {"officer_id": SCJG_OFF, "number": "川A5113220201", "case_id": SCJG_CASE, "code": CODE,
               "command": "record_act", "action": "suspend", "dl_id": "no-such-dead-letter"}
SAMPLE_QUERY = {"dept": SCJG, "area": "market", "tier": "normal"}
SAMPLE_BODY = {"username": "nobody-here", "password": "not-the-password", "at": "2026-01-05T09:00:00+08:00",
               "params": {}, "reason": "测试"}
WHO = (None, "sup", "aud", "ops", "scjg")
ROLE_OF = {"sup": "supervisor", "aud": "auditor", "ops": "operator", "scjg": "dept_user"}


def sample(name: str, schema: dict, known: dict):
    """A value for a parameter: a known good one, else one that fits its schema's type (the role checks
    come before parameter checks, so any value serves them; an allowed role may get a 400)."""
    if name in known:
        return known[name]
    if schema.get("enum"):
        return schema["enum"][0]
    return {"integer": schema.get("minimum", 1), "boolean": True}.get(schema.get("type"),
           {"date": "2026-01-05", "date-time": "2026-01-05T09:00:00+08:00"}.get(schema.get("format"), "x1"))


def walk_request(kit, path: str, method: str, op: dict, who: str | None):
    url = path
    for p in op["parameters"]:
        if p["in"] == "path":
            value = str(sample(p["name"], p["schema"], SAMPLE_PATH))
            url = url.replace("{" + p["name"] + "}", requests.utils.quote(value, safe=""))
    params = {p["name"]: sample(p["name"], p["schema"], SAMPLE_QUERY) for p in op["parameters"]
              if p["in"] == "query" and p.get("required")}
    if method == "post" and "dept" in {p["name"] for p in op["parameters"]}:
        params["dept"] = SCJG
    if method == "get":
        return kit.get(url, as_=who, **params)
    props = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    body = {k: sample(k, v, SAMPLE_BODY) for k, v in props.get("properties", {}).items()
            if k in SAMPLE_BODY or k in props.get("required", [])}
    if path.endswith("/auth/tokens"):
        body = {"username": "sthj"}
    return kit.post(url, body, as_=who, **params)


def test_every_route_with_every_role_answers_as_its_x_roles_say(county):
    doc = document()
    checked = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            allowed = set(op["x-roles"])
            for who in WHO:
                resp = walk_request(county, path, method, op, who)
                label = f"{method.upper()} {path} as {who}: {resp.status_code} {resp.text[:200]}"
                assert resp.status_code < 500 or (path == "/health" and resp.status_code == 503), label
                assert resp.headers["Content-Type"].startswith(
                    "text/plain" if path == "/metrics" and resp.status_code == 200 else "application/json"), label
                if "public" in allowed:
                    assert resp.status_code not in (401, 403) or path.endswith("/auth/login"), label
                elif who is None:
                    assert resp.status_code == 401, label
                    assert resp.json()["error"]["code"] == "unauthenticated", label
                elif ROLE_OF[who] not in allowed:
                    assert resp.status_code == 403, label
                    assert resp.json()["error"]["code"] == "forbidden_role", label
                else:
                    assert resp.status_code not in (401, 405), label
                    if resp.status_code == 403:  # only the department check may refuse an allowed role
                        assert resp.json()["error"]["code"] in ("forbidden", "forbidden_dept"), label
                checked += 1
    assert checked == len(WHO) * sum(len(ops) for ops in doc["paths"].values()) > 100


def test_department_user_sees_and_acts_on_its_own_department_only(county):
    kit = county
    # lists are forced to the user's own department; asking for another is refused
    own = kit.get("/api/v1/officers", as_="scjg").json()
    assert [o["officer_id"] for o in own["items"]] == [SCJG_OFF] and own["total"] == 1
    assert kit.get("/api/v1/officers", as_="scjg", dept=STHJ).status_code == 403
    assert {o["dept"] for o in kit.get("/api/v1/officers", as_="sup").json()["items"]} == {SCJG, STHJ}
    cases = kit.get("/api/v1/cases", as_="sthj").json()
    assert [c["case_id"] for c in cases["items"]] == [STHJ_CASE]
    # another department's records are as if absent
    assert kit.get(f"/api/v1/officers/{STHJ_OFF}", as_="scjg").status_code == 404
    assert kit.get("/api/v1/credentials/川A5113220301", as_="scjg").status_code == 404
    assert kit.get(f"/api/v1/cases/{STHJ_CASE}", as_="scjg").status_code == 404
    assert kit.get(f"/api/v1/cases/{STHJ_CASE}", as_="sthj").status_code == 200
    assert kit.get(f"/api/v1/officers/{STHJ_OFF}", as_="aud").status_code == 200
    # verifying an officer (核验执法资格) names the credential: own department's officers only
    assert kit.get(f"/api/v1/officers/{STHJ_OFF}/verify", as_="scjg", area="market").status_code == 404
    assert kit.get("/api/v1/officers/no-such-officer/verify", as_="scjg", area="market").status_code == 404
    own_verdict = kit.get(f"/api/v1/officers/{SCJG_OFF}/verify", as_="scjg", area="market")
    assert own_verdict.status_code == 200 and own_verdict.json()["dept"] == SCJG, own_verdict.text
    other = kit.get(f"/api/v1/officers/{STHJ_OFF}/verify", as_="sup", area="market")
    assert other.status_code == 200 and other.json()["dept"] == STHJ, other.text
    assert kit.get(f"/api/v1/officers/{STHJ_OFF}/verify", as_="aud", area="market").status_code == 200
    # findings inbox: only the own department's
    wait_for(lambda: kit.get("/api/v1/findings", as_="sup", source="penalty").json()["total"] >= 1)
    findings = kit.get("/api/v1/findings", as_="sthj").json()
    assert findings["items"] and {f["dept"] for f in findings["items"]} == {STHJ}
    assert kit.get("/api/v1/findings", as_="sthj", dept=SCJG).status_code == 403
    # the findings figures (counters): the same totals as the lists, a department user's own only
    for who, params in (("sup", {}), ("sup", {"source": "penalty"}), ("sthj", {})):
        figures = kit.get("/api/v1/findings-figures", as_=who, **params).json()
        listed = kit.get("/api/v1/findings", as_=who, limit=500, **params).json()
        assert figures["total"] == listed["total"] == sum(r["count"] for r in figures["rows"]) > 0
        assert figures["by_severity"] == {s: sum(1 for f in listed["items"] if f["severity"] == s)
                                          for s in {f["severity"] for f in listed["items"]}}
    assert {r["dept"] for r in kit.get("/api/v1/findings-figures", as_="sthj").json()["rows"]} == {STHJ}
    assert kit.get("/api/v1/findings-figures", as_="sthj", dept=SCJG).status_code == 403
    # commands: not on another department's case, not for another department
    act = {"params": {"act_kind": "evidence", "officers": [STHJ_OFF], "text": "现场检查"}}
    facts_before = len(kit.get(f"/api/v1/cases/{SCJG_CASE}", as_="sup").json()["facts"])
    refused = kit.post(f"/api/v1/cases/{SCJG_CASE}/commands/record_act", act, as_="sthj")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden", refused.text
    assert kit.post(f"/api/v1/cases/{SCJG_CASE}/commands/record_act", act, as_="sthj",
                    dept=SCJG).json()["error"]["code"] == "forbidden_dept"
    assert len(kit.get(f"/api/v1/cases/{SCJG_CASE}", as_="sup").json()["facts"]) == facts_before  # nothing applied
    own_act = {"params": {"act_kind": "evidence", "officers": [SCJG_OFF], "text": "复查"}}
    done = kit.post(f"/api/v1/cases/{SCJG_CASE}/commands/record_act", own_act, as_="scjg")
    assert done.status_code == 200 and done.json()["ok"], done.text
    audited = kit.get("/api/v1/audit", as_="aud", action="act").json()["items"]
    assert [(e["actor"], e["status"], e["target"]["case_id"]) for e in audited] == [
        ("scjg", 200, SCJG_CASE), ("sthj", 403, SCJG_CASE)]
    # auditor and operator cannot act; supervisor must say for which department
    assert kit.post(f"/api/v1/cases/{SCJG_CASE}/commands/record_act", own_act, as_="aud").status_code == 403
    missing = kit.post(f"/api/v1/cases/{SCJG_CASE}/commands/record_act", own_act, as_="sup")
    assert (missing.status_code, missing.json()["error"]["field"]) == (400, "dept")


def test_party_personal_data_is_masked_unless_the_owning_department_reads_it_and_reads_are_audited(county):
    kit = county
    full = kit.get(f"/api/v1/cases/{SCJG_CASE}", as_="scjg").json()
    assert full["party"]["id"] == PARTY["id"]
    for who in ("sup", "aud"):
        masked = kit.get(f"/api/v1/cases/{SCJG_CASE}", as_=who).json()
        text = str(masked)
        assert PARTY["id"] not in text, who
        assert masked["party"]["id"].startswith("51") and "*" in masked["party"]["id"]
        assert masked["party"]["name"] == PARTY["name"]
        assert masked["facts"][0]["payload"]["party"]["id"].endswith("34")  # facts' payloads too
    # a supervisor may see them in full by giving a reason, which the audit log keeps; nobody else may
    revealed = kit.get(f"/api/v1/cases/{SCJG_CASE}", as_="sup", reveal="核实当事人身份以便督办")
    assert revealed.status_code == 200 and revealed.json()["party"]["id"] == PARTY["id"]
    assert kit.get(f"/api/v1/cases/{SCJG_CASE}", as_="sup", reveal="看看").status_code == 400
    refused = kit.get(f"/api/v1/cases/{SCJG_CASE}", as_="aud", reveal="审计抽查需要")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden_reveal")
    listing = str(kit.get("/api/v1/cases", as_="sup").json())
    assert PARTY["id"] not in listing
    assert kit.get(f"/api/v1/cases/{SCJG_CASE}", as_="ops").status_code == 403

    log = kit.get("/api/v1/audit", as_="aud", action="personal_read").json()
    reads = {(e["actor"], e["personal"]) for e in log["items"] if e["target"].get("case_id") == SCJG_CASE}
    assert {("scjg", "full"), ("sup", "masked"), ("aud", "masked"), ("sup", "full")} <= reads
    assert [e["target"]["reveal"] for e in log["items"] if e["target"].get("reveal")] == ["核实当事人身份以便督办"]
    entry = log["items"][0]
    assert {"at", "actor", "role", "route", "client", "status"} <= set(entry) and entry["client"] == "127.0.0.1"
    assert kit.get("/api/v1/audit", as_="sup").status_code == 403
    later = (utcnow() + timedelta(minutes=1)).isoformat()
    assert kit.get("/api/v1/audit", as_="aud", since=later).json()["total"] == 0
    assert kit.get("/api/v1/audit", as_="aud", until=later, action="personal_read").json()["total"] == log["total"]
    # the API has no way to change the log
    assert kit.post("/api/v1/audit", {}, as_="aud").status_code == 405


def test_bad_parameters_are_400_json_naming_the_field_never_500(county):
    kit = county
    for path, params, field, code in [
        ("/api/v1/officers", {"limit": "abc"}, "limit", "invalid_type"),
        ("/api/v1/officers", {"limit": "0"}, "limit", "minimum"),
        ("/api/v1/officers", {"status": "dead"}, "status", "enum"),
        ("/api/v1/officers", {"bogus": "1"}, "bogus", "unknown_param"),
        ("/api/v1/cases", {"overdue": "maybe"}, "overdue", "invalid_type"),
        ("/api/v1/findings", {"severity": "grave"}, "severity", "enum"),
        ("/api/v1/findings", {"source": "nowhere"}, "source", "enum"),
        ("/api/v1/findings-figures", {"source": "nowhere"}, "source", "enum"),
        ("/api/v1/items", {}, "dept", "required"),
        (f"/api/v1/officers/{SCJG_OFF}/verify", {"area": "market", "at": "2024-02-30T09:00:00+08:00"}, "at",
         "invalid_datetime"),
        ("/api/v1/officers", {"q": "a\x00b"}, "q", "forbidden_char"),
    ]:
        resp = kit.get(path, as_="sup", **params)
        assert resp.status_code == 400, (path, params, resp.text)
        assert resp.json()["error"]["field"] == field and resp.json()["error"]["code"] == code, resp.text
        assert any("\u4e00" <= ch <= "\u9fff" for ch in resp.json()["error"]["message"])
    missing = kit.get("/api/v1/no/such/route", as_="sup")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "no_such_route"
    assert kit.get("/nothing-here", as_=None).json()["error"]["code"] == "no_such_route"
    bad_json = requests.post(f"{kit.base}/api/v1/cases/{SCJG_CASE}/commands/record_act", data=b"{oops",
                             headers=kit.headers("scjg"), timeout=10)
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "malformed_json"
    assert kit.get("/api/v1/officers", as_=None, headers={"Authorization": "Bearer zfa_forged"}).status_code == 401


def test_the_preset_in_effect_is_published(county):
    preset = county.get("/api/v1/preset", as_=None).json()
    assert preset["name"] == "seed001" and preset["problems"] == [] and preset["settings"]


def test_metrics_need_the_operator_role_unless_scraped_from_an_allowed_address(zhifa_config, container_factory):
    kit = start_api(zhifa_config, container_factory, API_METRICS_ALLOW="127.0.0.1")
    assert kit.get("/metrics", as_=None).status_code == 200  # the local Prometheus (make monitor)
    assert kit.get("/metrics", as_="scjg").status_code == 403  # a logged-in non-operator is still refused
    assert kit.get("/metrics", as_="ops").status_code == 200
    narrowed = kit.get("/metrics?name%5B%5D=zhifa_entrypoint_calls_total", as_="ops")  # (the gateway's narrowing:
    assert narrowed.status_code == 400 and narrowed.json()["error"]["code"] == "unknown_param"  # not declared here)


def test_browser_session_needs_csrf_for_changes_and_login_is_throttled(zhifa_config, container_factory):
    kit = start_api(zhifa_config, container_factory, API_LOGIN_MAX_FAILURES=3)
    accounts.create_user(kit.db, "li.ming", "dept_user", utcnow(), dept=SCJG, password="correct horse 1")
    web = requests.Session()
    login = web.post(f"{kit.base}/api/v1/auth/login", json={"username": "li.ming", "password": "correct horse 1"},
                     timeout=10)
    assert login.status_code == 200, login.text
    cookie = login.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    csrf = login.json()["csrf_token"]
    assert web.get(f"{kit.base}/api/v1/auth/me", timeout=10).json()["user"] == {
        "username": "li.ming", "role": "dept_user", "dept": SCJG, "via": "session"}
    # a state change without the CSRF header (as a forged cross-site form would send) is refused
    no_csrf = web.post(f"{kit.base}/api/v1/auth/logout", timeout=10)
    assert no_csrf.status_code == 403 and no_csrf.json()["error"]["code"] == "csrf"
    wrong = web.post(f"{kit.base}/api/v1/auth/logout", headers={"X-CSRF-Token": "x" * 43}, timeout=10)
    assert wrong.status_code == 403
    # a supervisor's browser session acts with the token it got at login (here: a token for a machine)
    accounts.create_user(kit.db, "zhang.wei", "supervisor", utcnow(), password="bureau password 9")
    boss = requests.Session()
    boss_csrf = boss.post(f"{kit.base}/api/v1/auth/login", json={"username": "zhang.wei",
                                                                 "password": "bureau password 9"}, timeout=10).json()["csrf_token"]
    forged = boss.post(f"{kit.base}/api/v1/auth/tokens", json={"username": "sthj"}, timeout=10)
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "csrf"
    issued = boss.post(f"{kit.base}/api/v1/auth/tokens", json={"username": "sthj"},
                       headers={"X-CSRF-Token": boss_csrf}, timeout=10)
    assert issued.status_code == 200 and issued.json()["token"].startswith("zfa_")
    assert web.post(f"{kit.base}/api/v1/auth/logout", headers={"X-CSRF-Token": boss_csrf}, timeout=10).status_code == 403
    assert web.post(f"{kit.base}/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}, timeout=10).status_code == 200
    assert web.get(f"{kit.base}/api/v1/auth/me", timeout=10).status_code == 401
    stored = kit.db.sessions.find_one({})
    assert stored is None or csrf not in str(stored)

    # throttled per account and address: the third failure locks, even the right password then waits
    for _ in range(3):
        bad = requests.post(f"{kit.base}/api/v1/auth/login", json={"username": "li.ming", "password": "wrong one!!"},
                            timeout=10)
        assert bad.status_code == 401
    locked = requests.post(f"{kit.base}/api/v1/auth/login",
                           json={"username": "li.ming", "password": "correct horse 1"}, timeout=10)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    # a disabled account's token stops working at once
    assert kit.get("/api/v1/auth/me", as_="sthj").status_code == 200
    accounts.set_disabled(kit.db, "sthj")
    assert kit.get("/api/v1/auth/me", as_="sthj").status_code == 401
    # passwords are stored as Argon2id hashes only
    assert kit.db.users.find_one({"_id": "li.ming"})["password_hash"].startswith("$argon2id$")
    kit.db.login_failures.update_many({}, {"$set": {"locked_until": utcnow() - timedelta(seconds=1)}})
    assert requests.post(f"{kit.base}/api/v1/auth/login", json={"username": "li.ming", "password": "correct horse 1"},
                         timeout=10).status_code == 200


def test_a_checked_token_is_trusted_for_the_cache_time_only(zhifa_config, container_factory):
    """API_AUTH_CACHE_SECONDS: a token found valid is not read again for that long (two finds saved per
    request); an account disabled by another process (here: straight in the database) stops working
    once that time has passed, and at once when disabled through this process."""
    import time

    kit = start_api(zhifa_config, container_factory, API_AUTH_CACHE_SECONDS=1.5)
    assert kit.get("/api/v1/auth/me", as_="sthj").status_code == 200
    kit.db.users.update_one({"_id": "sthj"}, {"$set": {"disabled": True}})  # another process's change
    assert kit.get("/api/v1/auth/me", as_="sthj").status_code == 200  # within the cache time
    time.sleep(1.6)
    assert kit.get("/api/v1/auth/me", as_="sthj").status_code == 401
    kit.db.users.update_one({"_id": "sthj"}, {"$set": {"disabled": False}})
    assert kit.get("/api/v1/auth/me", as_="sthj").status_code == 200
    accounts.set_disabled(kit.db, "sthj")  # through this process: at once
    assert kit.get("/api/v1/auth/me", as_="sthj").status_code == 401
