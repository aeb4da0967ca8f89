"""Through the real ingress to the registry service and back out through the HTTP API and events,
on real RabbitMQ and FerretDB."""
import json
import uuid

import pymongo
import pytest
import requests
from kombu import Connection, Queue
from nameko import config as nameko_config
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ServiceRpcClient

from contracts.catalog import Catalog
from services.gateway.service import GatewayService
from services.kernel.messaging import event_exchange
from services.registry.service import RegistryService
from tests.api_kit import start_api
from tests.helpers import SCJG, STHJ, drain, envelope, publish, relayed, wait_for

CODE = "330217001000"
FOOD_LAW = {"law": "《中华人民共和国食品安全法》", "article": "第一百二十四条第一款第（一）项"}
FIVE = [("lightest", "从轻"), ("lighter", "较轻"), ("normal", "一般"), ("heavier", "较重"), ("heaviest", "严重")]


@pytest.fixture
def start(zhifa_config, container_factory):
    """Starts gateway + registry under a jurisdiction preset (seed001 unless told)."""

    def run(preset: str = "seed001") -> dict:
        patch = nameko_config.patch({"JURISDICTION_PRESET": preset}, clear=False)
        patch.start()
        patches.append(patch)
        for cls in (GatewayService, RegistryService):
            container_factory(cls).start()
        return {"base": f"http://{zhifa_config['WEB_SERVER_ADDRESS']}", "amqp": zhifa_config["AMQP_URI"],
                "config": zhifa_config, "api": start_api(zhifa_config, container_factory)}

    patches: list = []
    yield run
    for patch in reversed(patches):
        patch.stop()


@pytest.fixture
def suite(start):
    return start()


def item_published(code: str = CODE, *, start: str = "2024-01-01", name: str = "对生产经营不符合食品安全标准食品的行政处罚",
                   category: str = "penalty", dept: str = SCJG, **extra) -> dict:
    return envelope("item.published", {"item_code": code, "name": name, "category": category,
                                       "legal_basis": [FOOD_LAW], "effective_from": start, **extra}, dept)


def standard_published(code: str = CODE, *, tiers: list[dict] | None = None, start: str = "2024-03-01",
                       limit: dict | None = None, dept: str = SCJG) -> dict:
    tiers = tiers if tiers is not None else [
        {"tier": t, "name": n, "conditions": f"{n}情节", "amount": {"min": 50000 + i * 10000, "max": 60000 + i * 10000}}
        for i, (t, n) in enumerate(FIVE)]
    return envelope("standard.published", {
        "item_code": code, "effective_from": start, "standard_no": "营市监规〔2024〕2号",
        "legal_limit": limit or {"kind": "amount", "min": 50000, "max": 100000, "max_only": False},
        "tiers": tiers}, dept)


def get(suite, path, **params):
    """A read through the HTTP API: the public view anonymously, dead letters as the operator, the rest
    as the supervisor."""
    who = None if path.startswith("/api/v1/public/") else "ops" if "dead-letters" in path else "sup"
    return suite["api"].get(path, as_=who, **params)


def get_item(suite, code=CODE):
    resp = get(suite, f"/api/v1/items/{code}")
    return resp.json() if resp.status_code == 200 else None


def dead_letters(suite):
    return get(suite, "/api/v1/dead-letters").json()["items"]


def registry_queue(conn: Connection, *keys: str) -> Queue:
    """A queue on `registry.events` for the given event types, declared before anything is published."""
    queue = Queue(f"test-registry-{uuid.uuid4().hex[:6]}", exchange=event_exchange("registry"),
                  routing_key=keys[0], auto_delete=False)
    bound = queue(conn.channel())
    bound.declare()
    for key in keys[1:]:
        bound.bind_to(exchange=event_exchange("registry"), routing_key=key)
    return queue


def db(suite, name):
    client = pymongo.MongoClient(suite["config"]["MONGO_URI"], serverSelectionTimeoutMS=3000)
    return client[f"{suite['config']['DB_PREFIX']}{name}"]


def land(suite, *envelopes):
    """Publish facts of one item one at a time, each applied and relayed before the next.

    FerretDB v1 does not make a filtered replace a compare-and-set, so two facts of one aggregate
    written at the same instant can lose one (a kernel matter); these tests are about the registry.
    """
    items = db(suite, "registry").items
    for env in envelopes:
        publish(suite["amqp"], [env])
        wait_for(lambda: (doc := items.find_one({"fact_ids": env["event_id"]})) and relayed(items, doc["_id"]))


def test_item_published_on_amqp_is_visible_through_http_and_announced(suite):
    with Connection(suite["amqp"]) as conn:
        queue = registry_queue(conn, "item.changed")
        publish(suite["amqp"], [item_published(cooperating_depts=["511322-gaj"])])
        [changed] = drain(conn, queue, 1)

    # the internal event satisfies its own contract and carries the item's time line
    assert Catalog().validate(changed, direction="internal").type == "item.changed"
    payload = changed["payload"]
    assert (payload["item_code"], payload["dept"], payload["revision"]) == (CODE, SCJG, 1)
    [version] = payload["versions"]
    assert version["effective_from"] == "2024-01-01" and version["effective_to"] is None
    assert version["legal_basis"] == [FOOD_LAW] and version["cooperating_depts"] == ["511322-gaj"]

    listing = get(suite, "/api/v1/items", dept=SCJG).json()
    assert [i["code"] for i in listing["items"]] == [CODE]
    assert get(suite, "/api/v1/items", dept=STHJ).json()["items"] == []
    item = get_item(suite)
    assert item["current"]["name"] == "对生产经营不符合食品安全标准食品的行政处罚"
    assert item["current"]["owning_dept"] == SCJG and len(item["history"]) == 1


def test_amendment_makes_a_new_version_but_earlier_dates_see_the_old_one(suite):
    land(suite, item_published(name="旧名称"),
         envelope("item.amended", {"item_code": CODE, "effective_from": "2024-06-01",
                                   "name": "新名称", "document_no": "营市监发〔2024〕21号"}))

    before = get(suite, "/api/v1/items", dept=SCJG, at="2024-03-01").json()["items"]
    after = get(suite, "/api/v1/items", dept=SCJG, at="2024-07-01T09:00:00+08:00").json()["items"]
    assert [(i["version"], i["name"]) for i in before] == [(1, "旧名称")]
    assert [(i["version"], i["name"]) for i in after] == [(2, "新名称")]
    assert before[0]["effective_to"] == "2024-05-31"
    assert get_item(suite)["current"]["version"] == 2
    # before the item existed, the department held nothing
    assert get(suite, "/api/v1/items", dept=SCJG, at="2023-12-31").json()["items"] == []


def test_five_tier_standard_yields_tier_ranges(suite):
    land(suite, item_published(), standard_published())

    resp = get(suite, f"/api/v1/items/{CODE}/tier-range", tier="normal", at="2024-08-01")
    assert resp.status_code == 200
    assert {k: resp.json()[k] for k in ("min", "max", "kind")} == {"min": 70000, "max": 80000, "kind": "amount"}
    by_name = get(suite, f"/api/v1/items/{CODE}/tier-range", tier="严重", at="2024-08-01").json()
    assert (by_name["min"], by_name["max"]) == (90000, 100000)
    with ServiceRpcClient("registry") as registry:
        assert registry.tier_range(CODE, "lightest", "2024-08-01")["min"] == 50000

    # before the standard took effect there is none; unknown tiers and items are 404, bad dates 400
    early = get(suite, f"/api/v1/items/{CODE}/tier-range", tier="normal", at="2024-02-01")
    assert early.status_code == 404 and early.json()["error"]["code"] == "standard_not_found"
    assert get(suite, f"/api/v1/items/{CODE}/tier-range", tier="extreme").status_code == 404
    assert get(suite, "/api/v1/items/NOPE/tier-range", tier="normal").status_code == 404
    bad = get(suite, f"/api/v1/items/{CODE}/tier-range", tier="normal", at="2024-13-45")
    assert bad.status_code == 400 and "时间参数无效" in bad.json()["error"]["message"]
    assert get(suite, f"/api/v1/items/{CODE}/tier-range").status_code == 400
    naive = get(suite, "/api/v1/items", dept=SCJG, at="2024-08-01T09:00:00")
    assert naive.status_code == 400 and naive.json()["error"]["code"] == "naive_datetime"
    assert get(suite, "/api/v1/items").status_code == 400
    missing = get(suite, "/api/v1/items/NOPE")
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "执法事项不存在"


def test_standard_with_too_few_tiers_is_refused_into_dead_letters(suite):
    three = [{"tier": t, "name": n, "conditions": f"{n}情节", "amount": {"min": 50000 + i * 10000,
                                                                        "max": 60000 + i * 10000}}
             for i, (t, n) in enumerate(FIVE[:3])]
    bad = standard_published(tiers=three)
    land(suite, item_published())
    publish(suite["amqp"], [bad])

    [dl] = wait_for(lambda: dead_letters(suite), timeout=10)
    assert (dl["service"], dl["entrypoint"]) == ("registry", "handle_item")  # (item.* and standard.*)
    assert dl["error"].startswith("invalid_standard: ") and "PoisonMessage" not in dl["error"]
    assert "裁量阶次不足：至少应有 5 个阶次，实有 3 个" in dl["error"]
    assert dl["event"]["event_id"] == bad["event_id"] and "body" not in dl  # no payload for operators
    assert get_item(suite)["standards"] == []


def test_lightest_tier_below_floor_is_refused_under_seed003(start):
    suite = start("seed003")
    low = [{"tier": t, "name": n, "conditions": f"{n}情节", "amount": {"min": i * 2000, "max": (i + 1) * 2000}}
           for i, (t, n) in enumerate(FIVE)]  # the law says "up to 10,000 yuan"; lightest starts at 0
    land(suite, item_published())
    publish(suite["amqp"], [standard_published(tiers=low, limit={"kind": "amount", "max": 10000, "max_only": True})])

    [dl] = wait_for(lambda: dead_letters(suite), timeout=10)
    assert "最轻阶次下限不得低于其 20%（2000元）" in dl["error"]


def test_penalty_item_without_standard_raises_finding_after_due_date(suite):
    with Connection(suite["amqp"]) as conn:
        queue = registry_queue(conn, "finding.raised", "finding.resolved")
        # in force since 2020: its standard was due by 2020-08-15
        land(suite, item_published(start="2020-01-01"))
        [raised] = drain(conn, queue, 1)
        assert raised["type"] == "finding.raised"
        assert raised["payload"]["rule_id"] == "REG-STANDARD-MISSING"
        assert (raised["payload"]["subject_id"], raised["payload"]["dept"]) == (CODE, SCJG)
        assert raised["payload"]["evidence"]["due"] == "2020-08-15"

        item = wait_for(lambda: (i := get_item(suite)) and i["findings"] and i)
        assert [f["rule_id"] for f in item["findings"]] == ["REG-STANDARD-MISSING"]
        with ServiceRpcClient("registry") as registry:
            assert [f["finding_key"] for f in registry.list_findings(SCJG)["items"]] == [
                f"REG-STANDARD-MISSING:item:{CODE}"]
            assert registry.list_findings(STHJ)["items"] == []

        # a standard in force resolves it
        land(suite, standard_published(start="2020-01-01"))
        [resolved] = drain(conn, queue, 1)
    assert resolved["type"] == "finding.resolved"
    assert resolved["payload"]["finding_key"] == f"REG-STANDARD-MISSING:item:{CODE}"
    assert wait_for(lambda: get_item(suite)["findings"] == [])


def test_duplicates_are_applied_once(suite):
    item = item_published()
    with Connection(suite["amqp"]) as conn:
        queue = registry_queue(conn, "item.changed")
        publish(suite["amqp"], [item, item])
        # a redelivery that gets past the gateway (e.g. after a crash) is a no-op in the registry too
        dispatch = event_dispatcher()
        dispatch("gateway", "item.published", item)
        changed = drain(conn, queue, 2, timeout=3)
    assert len(changed) == 1
    doc = db(suite, "registry").items.find_one({"_id": CODE})
    assert doc["fact_ids"] == [item["event_id"]]
    assert len(get_item(suite)["history"]) == 1


def test_publication_view_lists_items_with_their_leniency_entries(suite):
    leniency = envelope("leniency_list.published", {
        "kind": "no_penalty", "effective_from": "2024-05-01", "list_no": "营市监发〔2024〕9号",
        "entries": [{"item_code": CODE, "conditions": "初次违法，危害后果轻微并及时改正的",
                     "basis": "《中华人民共和国行政处罚法》第三十三条第一款"}]})
    land(suite, item_published(), standard_published())
    publish(suite["amqp"], [leniency])
    dispatch = event_dispatcher()
    dispatch("gateway", "leniency_list.published", leniency)  # redelivered: stored once
    wait_for(lambda: db(suite, "registry").leniency_lists.count_documents({}) == 1)

    view = get(suite, "/api/v1/public/items", dept=SCJG, at="2024-08-01").json()
    [entry] = view["items"]
    assert entry["item_code"] == CODE and entry["category_name"] == "处罚"
    assert entry["discretion_standard"]["standard_no"] == "营市监规〔2024〕2号"
    assert entry["leniency"] == [{"kind": "no_penalty", "kind_name": "不予处罚",
                                  "conditions": "初次违法，危害后果轻微并及时改正的",
                                  "basis": "《中华人民共和国行政处罚法》第三十三条第一款"}]
    # before the list took effect the item has no leniency entry
    assert get(suite, "/api/v1/public/items", dept=SCJG, at="2024-04-01").json()["items"][0]["leniency"] == []
    assert get(suite, "/api/v1/public/items").status_code == 400
    assert db(suite, "registry").leniency_lists.count_documents({}) == 1
