"""Helpers shared by the integration tests: envelopes, publishing, waiting."""
from __future__ import annotations

import json
import os
import random
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kombu import Connection, Exchange, Queue
from services.kernel import bundles

CST = timezone(timedelta(hours=8))
SCJG = "511322-scjg"
STHJ = "511322-sthj"


def distinct_ids(prefix: str, n: int) -> list[str]:
    """`n` different ids `<prefix><three hex digits>` for one test's aggregates: drawn without repeats (four
    separately drawn `uuid4().hex[:3]` collide about once in 700 tests, and a test then sees three aggregates)."""
    return [f"{prefix}{k:03x}" for k in random.sample(range(16 ** 3), n)]


def envelope(type_: str, payload: dict, dept: str = SCJG, occurred_at: str | None = None,
             event_id: str | None = None) -> dict:
    return {"event_id": event_id or str(uuid.uuid4()), "type": type_, "schema_version": 1,
            "occurred_at": occurred_at or datetime.now(CST).isoformat(timespec="seconds"),
            "dept": dept, "source": f"{dept}-system", "payload": payload}


def officer_registered(officer_id: str, dept: str = SCJG, name: str = "李明", kind: str = "officer") -> dict:
    return envelope("officer.registered", {"officer_id": officer_id, "name": name, "agency_id": f"A{dept}",
                                           "kind": kind, "status": "active"}, dept)


def credential_issued(officer_id: str, number: str, dept: str = SCJG, areas=("market",),
                      valid_from="2024-01-10", valid_to="2029-01-10", issuer_level="provincial") -> dict:
    return envelope("credential.issued", {
        "officer_id": officer_id, "credential_no": number, "issuer": "四川省人民政府",
        "issuer_level": issuer_level, "areas": list(areas), "regions": ["511322"],
        "valid_from": valid_from, "valid_to": valid_to, "issued_on": valid_from}, dept)


def publish(amqp_uri: str, messages: list, routing_keys: list[str] | None = None) -> None:
    """Publish raw envelopes (dicts) or raw bytes to exchange `ingress` with confirms."""
    exchange = Exchange("ingress", type="topic", durable=True)
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        for i, msg in enumerate(messages):
            if isinstance(msg, dict):
                body, key = json.dumps(msg, ensure_ascii=False).encode(), f"{msg['dept']}.{msg['type']}"
            else:
                body, key = msg, None
            if routing_keys:
                key = routing_keys[i]
            producer.publish(body, exchange=exchange, routing_key=key, declare=[exchange],
                             content_type="application/json", content_encoding="utf-8", serializer=None)


def rejection_queue(conn: Connection, dept: str) -> Queue:
    """A queue bound to `ingress.rejections` for one department (declared before publishing)."""
    exchange = Exchange("ingress.rejections", type="topic", durable=True)
    queue = Queue(f"test-rejections-{dept}-{uuid.uuid4().hex[:6]}", exchange=exchange, routing_key=dept,
                  auto_delete=False)
    queue(conn.channel()).declare()
    return queue


def drain(conn: Connection, queue: Queue, count: int, timeout: float = 10) -> list[dict]:
    """Up to `count` messages of `queue` (acked; a gateway bundle counts as its events), waiting at most
    `timeout` seconds. A channel of its own,
    closed at the end: messages the broker delivered beyond `count` go back to the queue for the next drain
    (on the connection's default channel they stayed unacked, and lost to a second drain, until it closed)."""
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    channel = conn.channel()
    simple = conn.SimpleQueue(queue, channel=channel)
    try:
        while len(out) < count and time.monotonic() < deadline:
            try:
                msg = simple.get(timeout=0.5)
            except simple.Empty:
                continue
            body = json.loads(msg.body) if isinstance(msg.body, (bytes, str)) else msg.payload
            key = (msg.delivery_info or {}).get("routing_key")
            # a gateway bundle (services/kernel/bundles.py) is what it dispatches: its events, one by one
            out.extend(envelope for _, envelope in bundles.unbundled(key, body)) if bundles.is_bundle_key(key) \
                else out.append(body)
            msg.ack()
    finally:
        simple.close()
        channel.close()
    return out


def vhost_queues(vhost: dict) -> list[dict]:
    """The queues of a test's vhost (the `vhost` fixture) as the management API lists them."""
    import requests
    from urllib.parse import quote

    return requests.get(f"{vhost['mgmt']}/api/queues/{quote(vhost['name'], safe='')}", auth=vhost["auth"],
                        timeout=10).json()


def queue_bindings(vhost: dict, queue: str, exchange: str = "gateway.events") -> set[str]:
    """The routing keys binding `queue` of a test's vhost to `exchange`, as the management API lists them."""
    import requests
    from urllib.parse import quote

    found = requests.get(f"{vhost['mgmt']}/api/queues/{quote(vhost['name'], safe='')}/{quote(queue, safe='')}"
                         "/bindings", auth=vhost["auth"], timeout=10).json()
    return {b["routing_key"] for b in found if b["source"] == exchange}


def wait_for(check, timeout: float = 10, interval: float = 0.1):
    """Poll `check` until it returns something truthy; return it or fail with the last value."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")


def case_list_settled(cases_col) -> bool:
    """The penalty case list has caught up with the cases of `cases_col` (the `cases` collection): no sync
    recorded for the lagged sync (CASE_LIST_LAG_MS) or left pending (services/penalty/store.py)."""
    from services.penalty import store

    return store.lists(cases_col.database)[store.BATCHES].find_one({}, {"_id": 1}) is None


def relayed(col, agg_id: str) -> bool:
    """No outbox of aggregate `agg_id` of collection `col` waits for its relay (its marker is gone)."""
    from services.kernel.aggregates import AggregateStore

    return AggregateStore(col).is_relayed(agg_id)


class FakeClock:
    """A service's clock for tests (`replace_dependencies(container, clock=FakeClock())`): real time
    plus a shift the test can move forward to make deadlines fall due."""

    def __init__(self):
        self.shift = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.shift


def stop_process(proc, timeout: float = 10) -> None:
    """Terminate a server process a test started; kill it when it does not stop within `timeout`."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except Exception:       # subprocess.TimeoutExpired (green or original subprocess module)
        proc.kill()


def tcp_open(port: int) -> bool:
    """Whether something accepts connections on a local TCP port."""
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# the FerretDB build (scripts/bootstrap.sh); ZHIFA_TEST_FERRETDB_BIN: another build to try (a new patch
# before it replaces .run/bin/ferretdb)
FERRETDB = Path(os.environ.get("ZHIFA_TEST_FERRETDB_BIN")
                or Path(__file__).resolve().parents[1] / ".run" / "bin" / "ferretdb")


def start_ferretdb(tmp_path: Path, port: int, state: Path | None = None):
    """A FerretDB of a test's own on 127.0.0.1:`port`, its SQLite files under `state` (default
    tmp_path/ferretdb; started again on the same files, it finds what it held), its log in tmp_path: for a
    test that stops the database, or whose figures the shared server's other clients would change."""
    import subprocess

    assert FERRETDB.exists(), "FerretDB binary missing: run scripts/bootstrap.sh"
    state = state or tmp_path / "ferretdb"
    state.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [str(FERRETDB), "--handler=sqlite", f"--sqlite-url=file:{state}/", f"--listen-addr=127.0.0.1:{port}",
         "--debug-addr=-", f"--state-dir={state}", "--telemetry=disable", "--log-level=error"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "ferretdb.log", "ab"))


@contextmanager
def offline_recorded(servers: dict, service_cls: type, suffix: str, *, host, preset: str, indexes,
                     clock=None):
    """An offline event-sourced service (services/kernel/replay.py `offline`, no container) on a scratch
    database whose commands are recorded, its indexes made by `indexes(db)`: (service, database, recorder)."""
    import pymongo

    from services.kernel.replay import offline
    from tests.db_recorder import Recorder

    with scratch_database(servers, suffix) as db:
        recorder = Recorder()
        client = pymongo.MongoClient(servers["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True,
                                     event_listeners=[recorder])
        try:
            service = offline(service_cls, client[db.name], host=host, preset=preset, dispatch=lambda t, p: None,
                              clock=clock)
            indexes(service.db)
            yield service, db, recorder
        finally:
            client.close()


@contextmanager
def scratch_database(servers: dict, suffix: str, *, tz_aware: bool = True, socket_timeout_ms: int | None = None):
    """A database of its own on the test profile's FerretDB (`t<random>_<suffix>`), dropped afterwards."""
    import pymongo

    from services.kernel.mongo import drop_with_companions

    client = pymongo.MongoClient(servers["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=tz_aware,
                                 socketTimeoutMS=socket_timeout_ms)
    database = client[f"t{uuid.uuid4().hex[:8]}_{suffix}"]
    try:
        yield database
    finally:
        drop_with_companions(client, database.name)  # (and e.g. penalty's case list)
        client.close()


def is_ferretdb(db) -> bool:
    """Whether `db` is served by FerretDB (its buildInfo names its version), not MongoDB."""
    return "ferretdbVersion" in db.client.admin.command("buildInfo")


def run_concurrently(work: list, apply, workers: int = 8) -> list:
    """Pop items of `work` from `workers` threads at once and apply each; the results, in the order done."""
    import threading

    lock, done = threading.Lock(), []

    def worker():
        while True:
            with lock:
                if not work:
                    return
                item = work.pop()
            done.append(apply(item))

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return done


def bench_env(servers: dict) -> dict:
    """The environment of a `python -m services.simulator.bench` subprocess on the test servers: it starts
    its own suite (no RABBIT_MGMT_URI: no vhost of its own; no DB_PREFIX: one of its own), this checkout
    on its path."""
    env = {k: v for k, v in os.environ.items() if k not in ("RABBIT_MGMT_URI", "DB_PREFIX")}
    env.update({"AMQP_URI": servers["AMQP_URI"], "MONGO_URI": servers["MONGO_URI"],
                "PYTHONWARNINGS": "ignore::DeprecationWarning", "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")})
    return env


def run_bench(args: list[str], env: dict, timeout: float) -> "subprocess.CompletedProcess":
    """`python -m services.simulator.bench ARGS` to its end, its output captured. Past `timeout` it gets
    SIGTERM — it then stops the suite it started and drops its databases (tests/integration/
    test_bench_stopped.py) — and the test fails with what it printed; a SIGKILL, as `subprocess.run`'s
    timeout sends, would leave the suite's nine processes running after the test."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "services.simulator.bench", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except Exception as exc:  # subprocess.TimeoutExpired (green or original subprocess module)
        if type(exc).__name__ != "TimeoutExpired":
            raise
        proc.terminate()  # (communicate, not wait: the bench's output must drain while it stops)
        try:
            out, err = proc.communicate(timeout=90)
        except Exception:  # (still running, or the pipes failed: it cannot stop its suite any more)
            proc.kill()
            out, err = proc.communicate()
        raise AssertionError(f"the bench ran over {timeout:g} s and was stopped: {(out or '')[-3000:]}"
                             f"{(err or '')[-2000:]}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@contextmanager
def launched(plan: list, base: dict, tmp_path, start_timeout: float = 90):
    """Start `nameko run` processes — `plan`: (name, command, extra environment, base URL) each —, wait
    until every one answers /health, yield {name: base URL}; SIGTERM them all afterwards (each logs to
    `tmp_path/<name>.log`, shown when one does not start)."""
    import signal
    import subprocess

    from services.launcher import wait_healthy

    started: dict = {}
    try:
        for name, cmd, extra, url in plan:
            log = open(tmp_path / f"{name}.log", "wb")
            started[name] = (subprocess.Popen(cmd, env={**base, **extra}, stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True), url)
        for name, (proc, url) in started.items():
            assert wait_healthy(f"{url}/health", timeout=start_timeout, proc=proc), \
                f"{name} did not start: {(tmp_path / (name + '.log')).read_text()[-2000:]}"
        yield {name: url for name, (_, url) in started.items()}
    finally:
        for proc, _ in started.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in started.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def suite_env(zhifa_config: dict, **env) -> dict:
    """The environment of a service process on this test's vhost and databases (`env` added)."""
    return {**os.environ, "AMQP_URI": zhifa_config["AMQP_URI"], "MONGO_URI": zhifa_config["MONGO_URI"],
            "DB_PREFIX": zhifa_config["DB_PREFIX"], "PYTHONWARNINGS": "ignore::DeprecationWarning",
            "ACCESS_LOG_LEVEL": "WARNING", "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""),
            **env}


@contextmanager
def gateway_and(zhifa_config: dict, free_port, tmp_path, others: list, **env):
    """A gateway process and `others` — (name, launcher Process, extra environment) each, on a free
    METRICS_PORT — on this test's vhost and databases (`launched`); `env` is added to every process's."""
    from services.kernel.messaging import declare_topology
    from services.launcher import command, processes

    declare_topology(zhifa_config["AMQP_URI"])
    base = suite_env(zhifa_config, **env)
    gateway_addr = f"127.0.0.1:{free_port()}"
    plan = [("gateway", command(processes()["gateway"]), {"WEB_SERVER_ADDRESS": gateway_addr, "METRICS_PORT": "0"},
             f"http://{gateway_addr}")]
    for name, proc, extra in others:
        port = free_port()
        plan.append((name, command(proc), {"METRICS_PORT": str(port), **extra}, f"http://127.0.0.1:{port}"))
    with launched(plan, base, tmp_path) as urls:
        yield urls
