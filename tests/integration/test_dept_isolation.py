"""Department identity end to end: provisioning, broker-enforced isolation, gateway checks (AMQP + HTTP)."""
import json
import uuid

import pymongo
import pytest
import requests
from amqp.exceptions import AccessRefused, PreconditionFailed
from kombu import Connection
from nameko import config

from services.client import Publisher, PublishError
from services.gateway.auth import amqp_identity, hash_token
from services.gateway.service import GatewayService
from services.provision import ProvisionError, dept_permissions, provision_dept
from tests.helpers import drain, officer_registered, rejection_queue, wait_for


def _dept(letter: str) -> str:
    return f"511322-{letter}{uuid.uuid4().hex[:8]}"


def _with_credentials(amqp_uri: str, user: str, password: str) -> str:
    scheme, rest = amqp_uri.split("://", 1)
    return f"{scheme}://{user}:{password}@{rest.split('@', 1)[1]}"


@pytest.fixture
def county(servers, vhost, zhifa_config, container_factory):
    """A running gateway in this test's vhost, and two provisioned departments A and B."""
    container_factory(GatewayService).start()
    depts = {"A": _dept("a"), "B": _dept("b")}
    made = {}
    try:
        for key, dept in depts.items():
            made[key] = provision_dept(dept, f"pw-{key}-{uuid.uuid4().hex[:6]}",
                                       mgmt_uri=servers["RABBIT_MGMT_URI"], amqp_uri=zhifa_config["AMQP_URI"],
                                       mongo_uri=zhifa_config["MONGO_URI"], db_prefix=zhifa_config["DB_PREFIX"])
        yield {
            "base": f"http://{zhifa_config['WEB_SERVER_ADDRESS']}", "config": zhifa_config, "vhost": vhost,
            "mgmt": servers["RABBIT_MGMT_URI"], "A": depts["A"], "B": depts["B"],
            "uri": {k: _with_credentials(zhifa_config["AMQP_URI"], depts[k], made[k].password) for k in depts},
            "token": {k: made[k].token for k in depts},
        }
    finally:
        for dept in depts.values():
            requests.delete(f"{vhost['mgmt']}/api/users/{dept}", auth=vhost["auth"], timeout=10)


def gateway_db(county):
    client = pymongo.MongoClient(county["config"]["MONGO_URI"], serverSelectionTimeoutMS=3000)
    return client[f"{county['config']['DB_PREFIX']}gateway"]


def raw_publish(uri: str, routing_key: str, body: dict, user_id: str | None):
    """One persistent message on `ingress` with publisher confirms (raises what the broker says)."""
    with Connection(uri, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        producer.publish(json.dumps(body).encode(), exchange="ingress", routing_key=routing_key,
                         serializer=None, content_type="application/json", content_encoding="utf-8",
                         delivery_mode=2, **({"user_id": user_id} if user_id else {}))


def test_provisioning_sets_least_privilege_and_is_idempotent(county):
    a = county["A"]
    mgmt, auth, vhost = county["vhost"]["mgmt"], county["vhost"]["auth"], county["vhost"]["name"]
    perms = requests.get(f"{mgmt}/api/permissions/{vhost}/{a}", auth=auth, timeout=5).json()
    assert {k: perms[k] for k in ("configure", "write", "read")} == dept_permissions(a)
    topics = requests.get(f"{mgmt}/api/topic-permissions/{vhost}/{a}", auth=auth, timeout=5).json()
    by_exchange = {t["exchange"]: t for t in topics}
    assert by_exchange["ingress"]["write"] == rf"^{a}\."
    assert by_exchange["ingress.rejections"]["read"] == rf"^{a}$"
    user = requests.get(f"{mgmt}/api/users/{a}", auth=auth, timeout=5).json()
    assert user["tags"] in ("", [])

    kwargs = dict(mgmt_uri=county["mgmt"], amqp_uri=county["config"]["AMQP_URI"],
                  mongo_uri=county["config"]["MONGO_URI"], db_prefix=county["config"]["DB_PREFIX"])
    again = provision_dept(a, **kwargs)
    assert (again.user_created, again.password, again.token) == (False, None, None)
    stored = gateway_db(county).dept_tokens.find_one({"_id": a})
    assert stored["token_hash"] == hash_token(county["token"]["A"]) and county["token"]["A"] not in str(stored)
    rotated = provision_dept(a, rotate_token=True, **kwargs)
    assert rotated.token and rotated.token != county["token"]["A"]
    with pytest.raises(ProvisionError):
        provision_dept("not a dept", **kwargs)


def test_department_publishes_its_own_routing_keys_only(county):
    a, b = county["A"], county["B"]
    with Publisher(county["uri"]["A"], a, f"{a}-system", settle=1.0) as pub:
        [ok] = pub.publish([officer_registered(f"{a}-0001", dept=a)])
    assert ok.status == "accepted"
    wait_for(lambda: gateway_db(county).accepted.find_one({"_id": ok.event_id}))

    # the broker itself refuses B's routing key from A's user: channel closed with 403
    forged = officer_registered(f"{b}-0001", dept=b)
    with pytest.raises(AccessRefused) as refused:
        raw_publish(county["uri"]["A"], f"{b}.officer.registered", forged, user_id=a)
    assert refused.value.reply_code == 403 and f"{b}.officer.registered" in str(refused.value)

    # the client reports the same refusal per event instead of raising
    with Publisher(county["uri"]["A"], b, "forger", user=a, rejections=False, max_retries=0) as pub:
        [bad, bad_too] = pub.publish([forged, officer_registered(f"{b}-0002", dept=b)])
    assert (bad.status, bad.reason, bad_too.status, bad_too.reason) == (
        "failed", "access_refused", "failed", "access_refused")

    # and A cannot pretend to be another broker user
    with pytest.raises(PreconditionFailed):
        raw_publish(county["uri"]["A"], f"{a}.officer.registered", officer_registered(f"{a}-0003", dept=a),
                    user_id=b)
    assert gateway_db(county).accepted.count_documents({"dept": b}) == 0
    assert gateway_db(county).quarantine.count_documents({}) == 0


def test_department_cannot_read_another_departments_rejections(county):
    a, b = county["A"], county["B"]
    with Connection(county["uri"]["A"]) as conn:
        channel = conn.channel()
        own = channel.queue_declare(queue="", exclusive=True).queue
        channel.queue_bind(queue=own, exchange="ingress.rejections", routing_key=a)
        with pytest.raises(AccessRefused) as refused:
            channel.queue_bind(queue=own, exchange="ingress.rejections", routing_key=b)
        assert "ingress.rejections" in str(refused.value)

    # B keeps a durable queue of its notices; A may neither read it nor create queues in B's namespace
    with Connection(county["uri"]["B"]) as conn:
        channel = conn.channel()
        channel.queue_declare(queue=f"{b}.rejections", durable=True)
        channel.queue_bind(queue=f"{b}.rejections", exchange="ingress.rejections", routing_key=b)
    with Connection(county["uri"]["A"]) as conn:
        with pytest.raises(AccessRefused):
            conn.channel().basic_get(queue=f"{b}.rejections")
        with pytest.raises(AccessRefused):
            conn.channel().queue_declare(queue=f"{b}.mine", durable=True)

    # a publisher configured for the wrong dept fails before it sends anything
    with pytest.raises(PublishError) as failed:
        Publisher(county["uri"]["A"], b, "forger", user=a, max_retries=0).publish(
            [officer_registered(f"{b}-0009", dept=b)])
    assert "ingress.rejections" in str(failed.value)


def test_gateway_binds_the_envelope_to_the_authenticated_user(county):
    a, b = county["A"], county["B"]
    with Publisher(county["uri"]["A"], a, f"{a}-system", settle=1.5) as pub:
        [mismatch] = pub.publish([officer_registered(f"{b}-0001", dept=b)])
    assert (mismatch.status, mismatch.reason) == ("rejected", "dept_mismatch")
    assert mismatch.violations[0]["field"] == "dept" and mismatch.quarantine_id
    kept = gateway_db(county).quarantine.find_one({"_id": mismatch.quarantine_id})
    assert kept["dept"] == a and kept["channel"] == "amqp"


def test_user_id_policy_for_internal_publishers(county):
    guest = county["config"]["AMQP_URI"]
    a = county["A"]
    with config.patch({"INGRESS_REQUIRE_USER_ID": True}, clear=False):
        with Connection(guest) as conn:
            queue = rejection_queue(conn, a)
            anonymous = officer_registered(f"{a}-0011", dept=a)
            raw_publish(guest, f"{a}.officer.registered", anonymous, user_id=None)
            [notice] = drain(conn, queue, 1)
        assert (notice["event_id"], notice["reason"]) == (anonymous["event_id"], "missing_user_id")
        assert notice["violations"][0]["field"] == "$publisher"
        with Publisher(guest, a, "zhifa-import", settle=1.0) as pub:  # guest sets user_id=guest: trusted
            [trusted] = pub.publish([officer_registered(f"{a}-0012", dept=a)])
        assert trusted.status == "accepted"
    with Publisher(guest, a, "zhifa-import", settle=1.0) as pub:
        [demo] = pub.publish([officer_registered(f"{a}-0013", dept=a)])
    assert demo.status == "accepted"


def test_amqp_identity_rules():
    assert amqp_identity("511322-scjg").dept == "511322-scjg"
    assert amqp_identity("guest") == amqp_identity(None) == amqp_identity("")
    assert amqp_identity("guest").dept is None and amqp_identity("guest").refusal is None
    assert amqp_identity("importer").refusal.rule == "unknown_publisher"
    with config.patch({"INGRESS_TRUSTED_USERS": ["guest", "importer"]}, clear=False):
        assert amqp_identity("importer").refusal is None
    with config.patch({"INGRESS_REQUIRE_USER_ID": "true"}, clear=False):
        assert amqp_identity(None).refusal.rule == "missing_user_id"


def test_http_token_decides_the_department(county):
    a, b = county["A"], county["B"]
    url = f"{county['base']}/api/v1/events"
    bearer = {"Authorization": f"Bearer {county['token']['A']}"}

    resp = requests.post(url, data=json.dumps(officer_registered(f"{b}-0001", dept=b)), headers=bearer, timeout=5)
    assert resp.status_code == 422
    assert (resp.json()["reason"], resp.json()["violations"][0]["rule"]) == ("dept_mismatch", "dept_mismatch")

    # a valid token wins over the header
    resp = requests.post(url, data=json.dumps([officer_registered(f"{a}-0001", dept=a)]),
                         headers={**bearer, "X-Zhifa-Dept": b}, timeout=5)
    assert resp.status_code == 202 and resp.json()["results"][0]["status"] == "accepted"

    resp = requests.post(url, data=json.dumps(officer_registered(f"{a}-0002", dept=a)),
                         headers={"Authorization": "Bearer zf_not-a-real-token"}, timeout=5)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_token"

    with config.patch({"HTTP_REQUIRE_TOKEN": True}, clear=False):
        resp = requests.post(url, data=json.dumps(officer_registered(f"{a}-0003", dept=a)),
                             headers={"X-Zhifa-Dept": a}, timeout=5)
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "missing_token" and "令牌" in resp.json()["error"]["message"]
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        resp = requests.post(url, data=json.dumps(officer_registered(f"{a}-0004", dept=a)), headers=bearer,
                             timeout=5)
        assert resp.status_code == 202

    # without the requirement (the demo), the header is still taken at its word
    resp = requests.post(url, data=json.dumps(officer_registered(f"{a}-0005", dept=a)),
                         headers={"X-Zhifa-Dept": b}, timeout=5)
    assert resp.status_code == 422 and resp.json()["reason"] == "dept_mismatch"

    rotated = provision_dept(a, rotate_token=True, mgmt_uri=county["mgmt"], amqp_uri=county["config"]["AMQP_URI"],
                             mongo_uri=county["config"]["MONGO_URI"], db_prefix=county["config"]["DB_PREFIX"])
    resp = requests.post(url, data=json.dumps(officer_registered(f"{a}-0006", dept=a)), headers=bearer, timeout=5)
    assert resp.status_code == 401
    resp = requests.post(url, data=json.dumps(officer_registered(f"{a}-0006", dept=a)),
                         headers={"Authorization": f"Bearer {rotated.token}"}, timeout=5)
    assert resp.status_code == 202


def test_only_the_suites_own_services_publish_to_internal_exchanges(county):
    """A provisioned department (even authenticated) cannot publish facts into the services' own
    exchanges (`<service>.events`, dead letters, rejection notices) or queues: the broker refuses."""
    from kombu import Exchange

    from services.kernel.manifest import event_exchange_names
    from services.kernel.messaging import DEAD_LETTER_EXCHANGE, REJECTIONS_EXCHANGE, declare_topology

    a = county["A"]
    declare_topology(county["config"]["AMQP_URI"])
    forged = officer_registered(f"{a}-0009", dept=a)
    targets = [(name, "officer.registered") for name in event_exchange_names()]
    targets += [(DEAD_LETTER_EXCHANGE.name, "personnel.handle_officer"), (REJECTIONS_EXCHANGE.name, a),
                ("", "personnel.handle_officer")]  # the default exchange straight into a service queue
    assert ("personnel.events", "officer.registered") in targets
    for exchange, key in targets:
        with pytest.raises(AccessRefused) as refused:
            with Connection(county["uri"]["A"], transport_options={"confirm_publish": True}) as conn:
                conn.Producer().publish(json.dumps(forged).encode(), exchange=Exchange(exchange, type="topic")
                                        if exchange else "", routing_key=key, serializer=None,
                                        content_type="application/json", user_id=a, declare=[])
        assert refused.value.reply_code == 403, (exchange, key)
