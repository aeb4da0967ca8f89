"""The gateway cannot be knocked over or fooled (real RabbitMQ + FerretDB).

Forged or malformed `x-zhifa-*` headers are ignored, a retried message keeps its routing key and
publisher through a real database outage, compressed bodies are unpacked only up to the limit,
deep nesting and lone surrogates are refused before anything is dispatched, and no error text
reaches an HTTP answer.
"""
from __future__ import annotations

import json
import logging
import socket
import uuid
import zlib

import eventlet
import pytest
import requests
from kombu import Connection, Exchange, Queue

from services.gateway.service import GatewayService
from tests.helpers import SCJG, STHJ, drain, officer_registered, publish, rejection_queue, wait_for

INGRESS = Exchange("ingress", type="topic", durable=True)


@pytest.fixture
def gateway(zhifa_config, container_factory):
    container = container_factory(GatewayService)
    container.start()
    return {"base": f"http://{zhifa_config['WEB_SERVER_ADDRESS']}", "amqp": zhifa_config["AMQP_URI"],
            "container": container, "config": zhifa_config}


def dispatched_queue(conn: Connection) -> Queue:
    """Everything the gateway dispatches to the suite's services (exchange gateway.events)."""
    queue = Queue(f"test-dispatched-{uuid.uuid4().hex[:6]}", exchange=Exchange("gateway.events", type="topic",
                                                                                 durable=True),
                  routing_key="#", auto_delete=False)
    queue(conn.channel()).declare()
    return queue


def send(amqp: str, body: bytes, routing_key: str, **properties) -> None:
    with Connection(amqp, transport_options={"confirm_publish": True}) as conn:
        conn.Producer().publish(body, exchange=INGRESS, routing_key=routing_key, declare=[INGRESS],
                                content_type="application/json", content_encoding="utf-8", serializer=None,
                                **properties)


def quarantine(gateway) -> list[dict]:
    """The gateway's quarantine as stored (the listing route belongs to the API service)."""
    import pymongo

    conf = gateway["config"]
    with pymongo.MongoClient(conf["MONGO_URI"], serverSelectionTimeoutMS=3000) as client:
        return list(client[f"{conf['DB_PREFIX']}gateway"].quarantine.find({}, {"raw": 0}))


def test_malformed_internal_headers_neither_crash_nor_skip_anything(gateway):
    first = officer_registered("511322-scjg-0901")
    with Connection(gateway["amqp"]) as conn:
        out = dispatched_queue(conn)
        # what killed the whole process before: a non-numeric attempt count, and more of the same kind
        for headers in ({"x-zhifa-attempts": "abc"}, {"x-zhifa-attempts": [1], "x-zhifa-signature": 7},
                        {"x-zhifa-routing-key": {"a": 1}, "x-zhifa-user-id": 3.5, "x-zhifa-attempts": 10**12}):
            env = officer_registered(f"511322-scjg-09{len(headers)}{uuid.uuid4().hex[:2]}")
            send(gateway["amqp"], json.dumps(env).encode(), f"{SCJG}.officer.registered", headers=headers)
        send(gateway["amqp"], json.dumps(first).encode(), f"{SCJG}.officer.registered")
        got = drain(conn, out, 4, timeout=10)
    assert len(got) == 4  # each one admitted like any other message
    assert requests.get(f"{gateway['base']}/health", timeout=5).status_code == 200


def test_forged_attempt_header_does_not_skip_the_duplicate_check(gateway):
    env = officer_registered("511322-scjg-0902")
    body = json.dumps(env).encode()
    with Connection(gateway["amqp"]) as conn:
        out = dispatched_queue(conn)
        send(gateway["amqp"], body, f"{SCJG}.officer.registered")
        assert len(drain(conn, out, 1)) == 1
        send(gateway["amqp"], body, f"{SCJG}.officer.registered", headers={"x-zhifa-attempts": 1})
        assert drain(conn, out, 1, timeout=2) == []  # a duplicate, not a "retry" to re-dispatch


def test_forged_routing_key_header_cannot_speak_for_another_department(gateway):
    env = officer_registered("511322-sthj-0903", dept=STHJ)
    with Connection(gateway["amqp"]) as conn:
        rejections = rejection_queue(conn, SCJG)
        send(gateway["amqp"], json.dumps(env).encode(), f"{SCJG}.officer.registered",
             headers={"x-zhifa-attempts": 1, "x-zhifa-routing-key": f"{STHJ}.officer.registered",
                      "x-zhifa-signature": "0" * 64})
        [notice] = drain(conn, rejections, 1)
    assert notice["status"] == "rejected" and notice["reason"] == "dept_mismatch"


class FlakyProxy:
    """A TCP proxy in front of the real database that can drop every connection (a real outage)."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.listener = eventlet.listen(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.down = False
        self.refused = 0
        self.open: list[socket.socket] = []
        self.pipes: list = []
        self._acceptor = eventlet.spawn(self._accept)

    def _accept(self):
        while True:
            client, _ = self.listener.accept()
            if self.down:
                self.refused += 1
                client.close()
                continue
            upstream = eventlet.connect(self.target)
            self.open += [client, upstream]
            self.pipes += [eventlet.spawn(self._pipe, client, upstream), eventlet.spawn(self._pipe, upstream, client)]

    @staticmethod
    def _pipe(src, dst):
        """Copy src -> dst; each socket is closed only by the one greenthread that reads it."""
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except (OSError, EOFError):  # eventlet raises EOFError when the other side is closed under it
            pass
        finally:
            for how, sock in ((socket.SHUT_WR, dst), (None, src)):
                try:
                    sock.shutdown(how) if how is not None else sock.close()
                except OSError:
                    pass

    def cut(self):
        self.down = True
        for s in self.open:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.open.clear()

    def restore(self):
        self.down = False

    def close(self):
        for thread in [self._acceptor, *self.pipes]:
            thread.kill()
        self.listener.close()


class Captured(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_retry_after_a_real_database_outage_keeps_routing_key_department_and_user(zhifa_config, container_factory):
    from nameko import config
    from urllib.parse import urlparse

    real = urlparse(zhifa_config["MONGO_URI"])
    proxy = FlakyProxy(real.hostname or "127.0.0.1", real.port or 27017)
    retries = Captured()
    logging.getLogger("zhifa.messaging").addHandler(retries)
    try:
        with config.patch({"MONGO_URI": f"mongodb://127.0.0.1:{proxy.port}/", "MONGO_TIMEOUT_MS": 700,
                           "RETRY_DELAYS_MS": [100, 200]}, clear=False):
            container_factory(GatewayService).start()
            env = officer_registered("511322-scjg-0904")
            with Connection(zhifa_config["AMQP_URI"]) as conn:
                out, rejections = dispatched_queue(conn), rejection_queue(conn, SCJG)
                proxy.cut()
                publish(zhifa_config["AMQP_URI"], [env])
                # an outage longer than all the retry delays together: nothing may be dead-lettered
                wait_for(lambda: sum("retry" in r.getMessage() for r in retries.records) >= 4, timeout=20)
                proxy.restore()
                [admitted] = drain(conn, out, 1, timeout=15)
                assert drain(conn, rejections, 1, timeout=1) == []
            assert admitted == env  # dispatched once the database is back: same department, same event
            failed = [r.getMessage() for r in retries.records if "retry" in r.getMessage()]
            assert failed and "AutoReconnect" in failed[0]  # the first attempt really met a dead database
            assert "attempt not counted" in failed[0]  # an outage does not use up the retries
            assert quarantine({"config": zhifa_config}) == []
            import pymongo

            with pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=3000) as client:
                assert client[f"{zhifa_config['DB_PREFIX']}gateway"].dead_letters.count_documents({}) == 0
    finally:
        logging.getLogger("zhifa.messaging").removeHandler(retries)
        proxy.close()


def test_compressed_bomb_is_refused_and_kept_small_compressed_event_accepted(gateway):
    bomb = zlib.compress(b'{"payload": "' + b"0" * (50 * 1024 * 1024) + b'"}', 9)  # 50 MiB from ~50 KiB
    good = officer_registered("511322-scjg-0905")
    with Connection(gateway["amqp"]) as conn:
        rejections, out = rejection_queue(conn, SCJG), dispatched_queue(conn)
        send(gateway["amqp"], bomb, f"{SCJG}.officer.registered", headers={"compression": "application/x-gzip"})
        send(gateway["amqp"], zlib.compress(json.dumps(good).encode()), f"{SCJG}.officer.registered",
             headers={"compression": "application/x-gzip"})
        [notice] = drain(conn, rejections, 1)
        [admitted] = drain(conn, out, 1)
    assert notice["reason"] == "max_unpacked_bytes" and notice["violations"][0]["field"] == "$message"
    assert admitted["event_id"] == good["event_id"]
    [kept] = wait_for(lambda: quarantine(gateway))
    assert kept["violations"][0]["rule"] == "max_unpacked_bytes" and kept["size"] == len(bomb)


def test_unknown_compression_is_refused_not_crashed(gateway):
    with Connection(gateway["amqp"]) as conn:
        rejections = rejection_queue(conn, SCJG)
        send(gateway["amqp"], b"\x00garbage", f"{SCJG}.officer.registered", headers={"compression": "zstd"})
        send(gateway["amqp"], b"\x00garbage", f"{SCJG}.officer.registered",
             headers={"compression": "application/x-gzip"})
        notices = drain(conn, rejections, 2)
    # kombu either does not know the method or fails to unpack: refused either way, never crashed
    assert [n["reason"] for n in notices] == ["bad_compression", "bad_compression"]
    assert requests.get(f"{gateway['base']}/health", timeout=5).status_code == 200


@pytest.mark.parametrize("depth", [50, 100_000])
def test_deep_nesting_is_refused_over_http_and_amqp_and_kept(gateway, depth):
    body = ("[" * depth + "]" * depth).encode()
    obj = ('{"payload": ' + "{\"a\": " * depth + "1" + "}" * depth + "}").encode()
    resp = requests.post(f"{gateway['base']}/api/v1/events", data=obj, timeout=10,
                         headers={"X-Zhifa-Dept": SCJG, "Content-Type": "application/json"})
    assert resp.status_code in (400, 413, 422), resp.text
    assert resp.json()["violations"][0]["rule"] in ("max_depth", "max_bytes")
    batch = requests.post(f"{gateway['base']}/api/v1/events", data=body, timeout=10,
                          headers={"X-Zhifa-Dept": SCJG, "Content-Type": "application/json"})
    assert batch.status_code in (400, 413, 422), batch.text
    with Connection(gateway["amqp"]) as conn:
        rejections = rejection_queue(conn, SCJG)
        send(gateway["amqp"], obj, f"{SCJG}.officer.registered")
        [notice] = drain(conn, rejections, 1)
    assert notice["reason"] in ("max_depth", "max_bytes")
    assert len(wait_for(lambda: len(quarantine(gateway)) >= 3 and quarantine(gateway))) >= 3


def test_lone_surrogate_is_refused_before_dispatch(gateway):
    env = officer_registered("511322-scjg-0906")
    raw = json.dumps(env).replace('"name": "\\u674e\\u660e"', '"name": "\\ud800"').encode()
    assert b"\\ud800" in raw
    with Connection(gateway["amqp"]) as conn:
        out = dispatched_queue(conn)
        resp = requests.post(f"{gateway['base']}/api/v1/events", data=raw, timeout=10,
                             headers={"X-Zhifa-Dept": SCJG, "Content-Type": "application/json"})
        assert resp.status_code == 422, resp.text
        assert resp.json()["violations"] == [{"field": "payload.name", "rule": "lone_surrogate",
                                              "message": resp.json()["violations"][0]["message"]}]
        assert drain(conn, out, 1, timeout=1.5) == []  # nothing was dispatched


def test_no_error_text_reaches_an_http_answer(gateway):
    for body in (b'{"event_id": oops}', b"\xff\xfe{", b'[{"a": 1}, oops]', b'{"a": NaN}'):
        resp = requests.post(f"{gateway['base']}/api/v1/events", data=body, timeout=10,
                             headers={"X-Zhifa-Dept": SCJG, "Content-Type": "application/json"})
        assert 400 <= resp.status_code < 500, resp.text
        for leak in ("Error", "Expecting", "Traceback", "line 1", "column", "codec"):
            assert leak not in resp.text, (body, resp.text)


def test_a_database_outage_answers_http_without_error_text(zhifa_config, container_factory):
    from nameko import config
    from urllib.parse import urlparse

    real = urlparse(zhifa_config["MONGO_URI"])
    proxy = FlakyProxy(real.hostname or "127.0.0.1", real.port or 27017)
    try:
        with config.patch({"MONGO_URI": f"mongodb://127.0.0.1:{proxy.port}/", "MONGO_TIMEOUT_MS": 500}, clear=False):
            container_factory(GatewayService).start()
            base = f"http://{zhifa_config['WEB_SERVER_ADDRESS']}"
            proxy.cut()
            env = officer_registered("511322-scjg-0907")
            for resp in (requests.post(f"{base}/api/v1/events", json=env, headers={"X-Zhifa-Dept": SCJG}, timeout=20),
                         requests.get(f"{base}/api/v1/events/{env['event_id']}", headers={"X-Zhifa-Dept": SCJG},
                                      timeout=20)):
                assert resp.status_code == 500 and resp.json()["error"]["code"] == "internal", resp.text
                for leak in ("AutoReconnect", "ServerSelection", "Error:", "Traceback", "127.0.0.1"):
                    assert leak not in resp.text, resp.text
            proxy.restore()
    finally:
        proxy.close()
