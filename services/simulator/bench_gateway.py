"""The gateway's work per event, alone: `python -m services.simulator.bench_gateway [--events N] [--http] [--tree DIR]`.

Starts one gateway process (of the tree `--tree`, default this one: an A/B compares two copies of the
code on the same servers) in a vhost and database prefix of its own, binds one queue to
`gateway.events` (so every event is routed somewhere, as in the suite), sends N simulated events
through the AMQP ingress (or as HTTP batches of 500 per department with `--http`), waits until the
gateway's `zhifa_ingress_accepted_total` has grown by N, and prints one JSON line: the gateway
process's CPU ms per event (/proc), its database commands per event by collection and command
(`zhifa_db_commands_total` from its /metrics) and the rate. Rates on a shared machine are not the
machine's; the work per event is the comparison that holds. Needs AMQP_URI, MONGO_URI and
RABBIT_MGMT_URI (scripts/with-infra.sh exports them).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from services.simulator.bench import Broker, parse_db_commands, with_vhost, workload
from services.simulator.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
_ACCEPTED = re.compile(r"^zhifa_ingress_accepted_total\{[^}]*\} ([0-9.e+]+)$", re.M)


def accepted(page: str) -> float:
    """Events the gateway accepted so far, from one /metrics page (all channels, departments, types)."""
    return sum(float(m.group(1)) for m in _ACCEPTED.finditer(page))


def gateway_commands(page: str) -> dict[str, float]:
    """`<collection>.<command>` -> database commands the gateway sent so far, from one /metrics page."""
    out: dict[str, float] = {}
    for (service, collection, command), (count, *_) in parse_db_commands(page).items():
        if service == "gateway":
            out[f"{collection}.{command}"] = out.get(f"{collection}.{command}", 0.0) + count
    return out


def per_event(before: dict[str, float], after: dict[str, float], events: int) -> dict[str, float]:
    return {k: round((after.get(k, 0.0) - before.get(k, 0.0)) / events, 3) for k in sorted(after)
            if after.get(k, 0.0) > before.get(k, 0.0)}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _page(web: str) -> str:
    with urllib.request.urlopen(f"http://{web}/metrics", timeout=10) as resp:
        return resp.read().decode()


def _post_batches(web: str, events: list[dict]) -> None:
    by_dept: dict[str, list[dict]] = {}
    for env in events:
        by_dept.setdefault(env["dept"], []).append(env)
    for dept, items in by_dept.items():
        for start in range(0, len(items), 500):
            data = json.dumps(items[start:start + 500], ensure_ascii=False).encode()
            request = urllib.request.Request(f"http://{web}/api/v1/events", data=data, method="POST",
                                             headers={"X-Zhifa-Dept": dept, "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=300):
                pass


def run(tree: Path, count: int, http: bool) -> dict:
    from kombu import Connection, Exchange, Queue

    from services.simulator.publish import publish_amqp

    run_id = uuid.uuid4().hex[:6]
    vhost, prefix, web = f"zhifa-gwbench-{run_id}", f"zhifa_gwbench{run_id}_", f"127.0.0.1:{free_port()}"
    broker = Broker(os.environ["RABBIT_MGMT_URI"])
    broker.create_vhost(vhost, "guest")
    amqp = with_vhost(os.environ["AMQP_URI"], vhost)
    env = {**os.environ, "AMQP_URI": amqp, "DB_PREFIX": prefix, "WEB_SERVER_ADDRESS": web, "PYTHONPATH": str(tree),
           "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    proc = subprocess.Popen([sys.executable, "-m", "nameko", "run", "--config", str(tree / "services" / "config.yaml"),
                             "services.gateway.service:GatewayService"], cwd=tree, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://{web}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("bench_gateway: the gateway did not start")
            time.sleep(0.3)
        with Connection(amqp) as conn:
            Queue(f"sink-{run_id}", exchange=Exchange("gateway.events", type="topic", durable=True), routing_key="#",
                  durable=True)(conn.channel()).declare()
        events = workload(count, ["personnel", "registry", "penalty"], seed=int(run_id, 16) % 100000,
                          run_id=run_id)[0][:count]
        page = _page(web)
        cpu0, accepted0, commands0 = cpu_seconds(proc.pid), accepted(page), gateway_commands(page)
        started = time.monotonic()
        if http:
            _post_batches(web, events)
        else:
            publish_amqp(events, amqp)
        while accepted(_page(web)) - accepted0 < len(events):
            if time.monotonic() - started > 600:
                raise SystemExit("bench_gateway: not every event was accepted within 600 s")
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        page = _page(web)
        commands = per_event(commands0, gateway_commands(page), len(events))
        return {"channel": "http" if http else "amqp", "tree": str(tree), "events": len(events),
                "elapsed_s": round(elapsed, 2), "events_per_s": round(len(events) / elapsed, 1),
                "gateway_cpu_ms_per_event": round((cpu_seconds(proc.pid) - cpu0) * 1000 / len(events), 3),
                "db_commands_per_event": round(sum(commands.values()), 3), "db_commands_by_collection": commands,
                "load_avg": [round(x, 2) for x in os.getloadavg()]}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        broker.delete_vhost(vhost)
        import pymongo

        with pymongo.MongoClient(os.environ["MONGO_URI"], serverSelectionTimeoutMS=5000) as client:
            for name in client.list_database_names():
                if name.startswith(prefix):
                    client.drop_database(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.simulator.bench_gateway", description="网关每条事件的工作量")
    parser.add_argument("--events", type=int, default=1500, help="事件数")
    parser.add_argument("--http", action="store_true", help="经 HTTP 批量提交（每批 500 条，按部门）而非 AMQP")
    parser.add_argument("--tree", type=Path, default=ROOT, help="网关代码所在目录（A/B 对比两份代码）")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.tree.resolve(), args.events, args.http), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
