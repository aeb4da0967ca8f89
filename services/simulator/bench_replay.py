"""Replay of a one-year county history (一年县域历史重放), timed as events/s.

What is timed: the kernel's replay (services/kernel/replay.py): every aggregate holding the facts
of the county's year is re-folded from its stored facts and its rules are re-evaluated at `as_of`,
through the same path as the deadline sweep, writing only what changes. That is what re-running
the rules after a change costs. events/s = facts re-folded / seconds, from the first read to the
last write, in one process (the caller's), against the suite's MongoDB-wire server.

Two ways in:
- `make bench BENCH_ARGS="--replay"` (phase of services.simulator.bench): one simulated county year
  (scale "year": ≈ 7,700 facts of officers, credentials, training, items, standards and cases) is
  published through the suite's ingress and waited for, then replayed; the loading rate and the
  replay rate go to the bench JSON under "replay", with the CPU of the database while replaying.
- `python -m services.simulator.bench_replay [--service penalty ...] [--as-of ISO]`: replay every
  aggregate of a running suite's databases (MONGO_URI, DB_PREFIX, JURISDICTION_PRESET and
  PLUGINS_ENABLED as the services read them), e.g. after a plugin or a preset changed. Who may run it:
  the operator on the server — it needs the suite's database (MONGO_URI), which no department
  holds. Findings raised or resolved go out through each service's outbox sweep.
"""
from __future__ import annotations

import argparse
import fnmatch
import importlib
import sys
import time
from datetime import datetime, timezone
from functools import partial
from typing import Any, Callable, Iterable

from services.kernel.replay import ReplayStats, offline, replay_service

REPLAY_SEED_OFFSET = 7919  # the replayed county is not one of the sustained phase's counties
REPLAY_WORKERS = 4  # aggregates re-evaluated at once (services/kernel/replay.py `replay`)


def service_class(name: str) -> type:
    """The nameko service class of a declared service ("module:Class" in its manifest)."""
    from services.kernel.manifest import manifest

    declared = manifest(name)
    if declared is None:
        raise SystemExit(f"replay: 未声明的服务 {name}")
    module, _, cls = declared.service.partition(":")
    return getattr(importlib.import_module(module), cls)


def event_sourced(names: Iterable[str]) -> list[str]:
    """The services among `names` whose aggregates the kernel folds (the ones a replay re-runs)."""
    from services.kernel.base import EventSourcedService

    return [n for n in names if issubclass(service_class(n), EventSourcedService)]


def suite_settings() -> tuple[str, Any]:
    """(jurisdiction preset, plugin host) as the suite's processes read them (services/config.yaml and
    the environment), so the rules replayed are the ones the services run."""
    from plugins.host import build_plugin_manager
    from services.kernel.config import load_config
    from services.launcher import CONFIG

    conf = load_config(str(CONFIG))
    enabled = conf.get("PLUGINS_ENABLED")
    if isinstance(enabled, str):
        enabled = [p.strip() for p in enabled.split(",") if p.strip()]
    return str(conf["JURISDICTION_PRESET"]), build_plugin_manager(enabled=enabled)


def offline_services(mongo_uri: str, prefix: str, names: Iterable[str], preset: str | None = None,
                     host=None) -> tuple[Any, dict[str, Any]]:
    """(client, {name: offline service instance}) on the databases `<prefix><service>`; preset and
    plugins as the suite reads them unless given."""
    from services.kernel.mongo import make_client

    if preset is None or host is None:
        preset, host = suite_settings()
    client = make_client(mongo_uri)
    services = {}
    for name in names:
        cls = service_class(name)
        services[name] = offline(cls, client[f"{prefix}{cls.db.service}"], host=host, preset=preset)
    return client, services


def aggregate_ids(events: Iterable[dict], services: dict[str, Any]) -> dict[str, dict[str, set[str]]]:
    """Service -> aggregate -> ids of the aggregates the events went into (each service's own adapter
    decides), so each aggregate's replay reads only its own ids."""
    out: dict[str, dict[str, set[str]]] = {name: {} for name in services}
    for env in events:
        for name, service in services.items():
            aggregate = service.manifest.aggregate_for(env["type"])
            if aggregate is not None:
                out[name].setdefault(aggregate.name, set()).add(service.adapter(aggregate, env).aggregate_id(env))
    return out


def replay_all(services: dict[str, Any], as_of: datetime, ids: dict[str, dict[str, set[str]]] | None = None,
               workers: int = 1) -> tuple[ReplayStats, dict[str, dict]]:
    """Replay each service (only the aggregates `ids[service][aggregate]` when given; `workers`
    aggregates at once); the total and the figures per aggregate."""
    total, detail = ReplayStats(), {}
    for name, service in services.items():
        wanted = None if ids is None else ids.get(name, {})
        if wanted is not None and not any(wanted.values()):
            continue
        for aggregate, stats in replay_service(service, as_of, wanted, workers).items():
            total.add(stats)
            detail[f"{name}.{aggregate}"] = stats.as_dict()
    return total, detail


def load_order(names: Iterable[str]) -> list[str]:
    """The services in an order where each comes after those whose events it consumes (personnel and
    registry before penalty: its rules read their `officer.changed` / `item.changed` projections)."""
    from services.kernel.manifest import manifest

    names = list(names)
    after = {n: {src for src, _ in (manifest(n).consumes if manifest(n) else ()) if src in names and src != n}
             for n in names}
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and after[n] <= set(ordered)]
        ordered.extend(ready or [n for n in names if n not in ordered])  # a cycle: declaration order
    return ordered


def direct_loader(mongo_uri: str, prefix: str, amqp_uri: str, running: Iterable[str],
                  settle: Callable[[], Any] | None = None, chunk: int = 500) -> Callable[[list[dict]], dict]:
    """A loader of a county year straight through the services' own ingest path, in this process.

    Each service's facts go, in the order the county produced them and `chunk` at a time, through an
    `offline` instance of the service's class (its adapters, plugins, preset and settings as the
    suite reads them) and its batch path `apply_batch`: per aggregate and chunk one read, one
    compare-and-set write, the relay of its events to the suite's broker (so the running services
    keep their projections: `officer.changed` into penalty, `case.changed` into handover, findings
    into coordination) and `after_save` (side indexes, the case list). Services go in `load_order`;
    after each, `settle()` waits until the suite has handled what the relayed events started.
    A refused fact (the gateway's admission or the domain's PoisonMessage, as the ingress would
    refuse or dead-letter it) is counted, not loaded; `applied` counts the facts stored in aggregates
    (what the replay re-folds), `kept` those a service keeps outside them (registry's leniency lists). Untimed for the replay's figure; its own rate goes to the JSON as the load's.
    """
    from nameko.standalone.events import event_dispatcher

    from services.kernel.messaging import PoisonMessage, declare_topology
    from services.simulator.bench import log

    running = list(running)

    def load(events: list[dict]) -> dict:
        started = time.perf_counter()
        preset, host = suite_settings()
        send = event_dispatcher(uri=amqp_uri)
        client, services = offline_services(mongo_uri, prefix, event_sourced(running), preset, host)
        declare_topology(amqp_uri)
        for name, service in services.items():
            service.dispatch = partial(send, name)
            indexes = getattr(type(service).db, "indexes", None)
            if indexes is not None:  # as the service's container does at start (idempotent)
                indexes(service.db)
        accepted, not_admitted = admitted(events)
        applied, kept, refused, failed = 0, 0, not_admitted, {}

        def count(outcome, into_aggregate: bool = True) -> None:
            nonlocal applied, kept, refused
            if outcome is None and into_aggregate:
                applied += 1
            elif outcome is None:
                kept += 1
            elif isinstance(outcome[1], PoisonMessage):
                refused += 1
            else:
                reason = f"{type(outcome[1]).__name__}: {outcome[1]}"[:200]
                failed[reason] = failed.get(reason, 0) + 1

        try:
            for name in load_order(services):
                service = services[name]
                mine = [e for e in accepted if service.manifest.aggregate_for(e["type"]) is not None]
                for start in range(0, len(mine), chunk):
                    for outcome in service.apply_batch(mine[start:start + chunk]):
                        count(outcome)
                own = [e for e in accepted if service.manifest.aggregate_for(e["type"]) is None
                       and own_handler(service, e["type"]) is not None]
                for env in own:  # facts the service keeps outside its aggregates (registry's leniency lists)
                    try:
                        own_handler(service, env["type"])(env)
                        count(None, into_aggregate=False)
                    except Exception:
                        count(sys.exc_info())
                log(f"replay: loaded {len(mine) + len(own)} {name} facts straight through its ingest path")
                if settle is not None:
                    settle()
        finally:
            client.close()
        seconds = time.perf_counter() - started
        handled = applied + kept + refused
        return {"how": "direct", "events": len(events), "handled": handled, "applied": applied, "kept": kept,
                "refused": refused, "failed": failed, "complete": not failed and handled == len(events),
                "seconds": round(seconds, 1), "events_per_s": round(len(events) / seconds, 1) if seconds else None,
                "chunk": chunk}

    return load


def own_handler(service, event_type: str) -> Callable[[dict], Any] | None:
    """The service's own handler of an ingress fact no declared aggregate routes (bound method), if any."""
    from nameko.events import EventHandler

    for attr in dir(type(service)):
        for ep in getattr(getattr(type(service), attr, None), "nameko_entrypoints", ()):
            if isinstance(ep, EventHandler) and ep.source_service == "gateway" and \
                    fnmatch.fnmatchcase(event_type, ep.event_type.replace("#", "*")):
                return getattr(service, attr)
    return None


def admitted(events: list[dict]) -> tuple[list[dict], int]:
    """The events as the gateway admits them (contracts, strings in NFC; services/gateway/admission.py),
    and how many it refuses, so the direct load gives the services what the ingress would."""
    from contracts.catalog import Catalog
    from services.gateway.admission import Admitted, admit
    from services.kernel import config

    catalog = Catalog(max_bytes=int(config.get("INGRESS_MAX_BYTES")),
                      years=(int(config.get("INGRESS_YEAR_MIN")), int(config.get("INGRESS_YEAR_MAX"))))
    out = []
    for env in events:
        result = admit(catalog, env, authenticated_dept=env.get("dept"))
        if isinstance(result, Admitted):
            out.append(result.envelope)
    return out, len(events) - len(out)


def quiet(amqp_uri: str, metrics_urls: Iterable[str], still: float = 3.0, limit: float = 600.0) -> float:
    """Wait until the suite is idle: no message ready in its queues and no event handler call for
    `still` seconds (timers and RPC do not count); the seconds waited."""
    import urllib.request

    from kombu import Connection

    from services.simulator.bench import _SAMPLE, samples, suite_queues

    def calls() -> float:
        total = 0.0
        for url in metrics_urls:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    text = resp.read().decode()
            except OSError:
                continue
            total += sum(value for (name,), labels, value in samples(text, _SAMPLE)
                         if name == "zhifa_entrypoint_calls_total" and "." in labels.get("event_type", ""))
        return total

    queues = suite_queues()

    def ready(conn) -> int:
        waiting = 0
        for name in queues:
            try:
                channel = conn.channel()
                waiting += channel.queue_declare(name, passive=True).message_count
                channel.close()
            except Exception:  # not declared in this vhost (a service not running)
                continue
        return waiting

    started = time.monotonic()
    with Connection(amqp_uri) as conn:
        last, since = calls(), time.monotonic()
        while time.monotonic() - started < limit:
            time.sleep(1)
            now = calls()
            if now != last or ready(conn):
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= still:
                break
    return round(time.monotonic() - started, 1)


def county_events(sim, running: Iterable[str]) -> list[dict]:
    """The events of a simulated county that go to the `running` services, in the county's order."""
    from services.simulator.bench import SERVICE_OF

    running = list(running)
    return [e for e in sim.events if SERVICE_OF.get(e["type"].split(".")[0]) in running]


def simulate_county(scale: str, seed: int, run_id: str, running: Iterable[str] = ("personnel", "registry", "penalty")):
    """The events `phase(..., seed, run_id, scale=scale)` loads (the same simulation)."""
    from services.simulator.generator import county_config, simulate

    return county_events(simulate(county_config(scale, seed=seed + REPLAY_SEED_OFFSET, tag=f"{run_id}r")), running)


def phase(load: Callable[[list[dict]], dict], mongo_uri: str, prefix: str, running: Iterable[str], seed: int,
          run_id: str, others: dict[str, int], settle: Callable[[dict], Any] | None = None,
          scale: str = "year", workers: int | None = None) -> dict:
    """The bench's replay phase: load one county year (`scale`: the bench's "year"; a test's "demo",
    a whole year of a smaller county) with `load` (direct_loader, or the ingress), then replay it.

    When the load did not finish in time, `settle(loaded)` drops (or waits out) the rest first, so
    the replay does not share the database with the suite still working through it; the replay
    then covers the facts stored, and says how many of the year's events that is."""
    from services.simulator.bench import ProcessSampler, log
    from services.simulator.generator import county_config, simulate

    running = list(running)
    sim = simulate(county_config(scale, seed=seed + REPLAY_SEED_OFFSET, tag=f"{run_id}r"))
    events = county_events(sim, running)
    log(f"replay: loading one county year ({len(events)} events, {sim.config.region} {sim.config.year})")
    loaded = load(events)
    if not loaded.get("complete") and settle is not None:
        settle(loaded)
    client, services = offline_services(mongo_uri, prefix, event_sourced(running))
    try:
        ids = aggregate_ids(events, services)
        as_of = datetime.now(timezone.utc)
        log(f"replay: re-folding {sum(len(v) for by in ids.values() for v in by.values())} aggregates and "
            "re-running their rules "
            f"as of {as_of.isoformat(timespec='seconds')}")
        sampler = ProcessSampler({}, others)
        sampler.start()
        workers = REPLAY_WORKERS if workers is None else max(1, workers)
        total, detail = replay_all(services, as_of, ids, workers)
        _, cpu = sampler.stop()
    finally:
        client.close()
    out = {"what": "re-fold every aggregate of one county year from its stored facts and re-run its rules "
                   "at as_of (services/kernel/replay.py), in the bench process",
           "county": {"region": sim.config.region, "year": sim.config.year, "seed": sim.config.seed,
                      "events": len(events), "summary": sim.summary()},
           "loaded": {k: loaded.get(k) for k in ("how", "handled", "applied", "kept", "refused", "failed", "events", "complete",
                                                  "seconds", "events_per_s", "chunk") if k in loaded},
           # the whole year: every event loaded (applied or refused as the ingress would), and every
           # applied fact re-folded by the replay
           "whole_year": bool(loaded.get("complete")) and total.facts == loaded.get("applied", loaded.get("handled")),
           "as_of": as_of.isoformat(), "workers": workers, **total.as_dict(), "events_per_s": total.facts_per_s,
           "by_aggregate": detail, "cpu": cpu}
    log(f"replay: {total.facts} facts of {total.aggregates} aggregates in {total.seconds:.1f}s → "
        f"{total.facts_per_s} events/s ({total.written} written, {total.raised} raised, {total.resolved} resolved)")
    return out


def summary_line(result: dict) -> str:
    """One line of the bench summary (Chinese, with the conditions it was measured under)."""
    loaded, cpu = result["loaded"], result.get("cpu") or {}
    shares = "，".join(f"{name} {v['share_of_machine']:.0%}" for name, v in
                       sorted((cpu.get("processes") or {}).items(), key=lambda kv: -kv[1]["cpu_s"]))
    others = cpu.get("others_cpu_share")
    return (f"{result['events_per_s']} 条/秒（{result['county']['region']} 县 {result['county']['year']} 年全年历史："
            f"{result['aggregates']} 个聚合、{result['facts']} 条事实按 as_of 重新折叠并重跑规则，用时 {result['seconds']} 秒"
            f"（同时 {result.get('workers', 1)} 个聚合）；"
            f"写入 {result['written']}，新增发现 {result['raised']}，消除 {result['resolved']}；"
            f"{load_words(result)}；"
            f"重放期间 CPU：{shares or '未知'}，其他进程 {'未知' if others is None else format(others, '.0%')}）")


def load_words(result: dict) -> str:
    """How the county year was loaded, in the summary's words."""
    loaded = result["loaded"]
    whole = "全年已全部重放" if result.get("whole_year") else "未覆盖全年"
    if loaded.get("how") == "direct":
        return (f"装载：直接经各服务的入库路径（apply_batch，每批 {loaded.get('chunk')} 条，不计时）"
                f"{loaded['handled']}/{loaded['events']} 条（拒收 {loaded.get('refused', 0)}），"
                f"{loaded['events_per_s']} 条/秒；{whole}")
    return f"装载经入口 {loaded['handled']}/{loaded['events']} 条，{loaded['events_per_s']} 条/秒；{whole}"


def main(argv: list[str] | None = None) -> int:
    from services.kernel.config import load_config
    from services.kernel.manifest import names
    from services.launcher import CONFIG

    parser = argparse.ArgumentParser(prog="python -m services.simulator.bench_replay",
                                     description="按 as_of 重放：对已存事实重新折叠聚合并重跑规则（运维在服务器上执行）")
    parser.add_argument("--service", action="append", help="只重放这些服务（可重复；默认全部事件溯源服务）")
    parser.add_argument("--as-of", help="评估时刻（带时区的 ISO 8601；默认现在）")
    parser.add_argument("--prefix", help="数据库前缀（默认 DB_PREFIX）")
    parser.add_argument("--workers", type=int, default=REPLAY_WORKERS, help="同时重放的聚合数")
    args = parser.parse_args(argv)
    try:
        as_of = datetime.fromisoformat(args.as_of) if args.as_of else datetime.now(timezone.utc)
    except ValueError:
        print(f"replay: --as-of 不是 ISO 8601 时间：{args.as_of}", file=sys.stderr)
        return 2
    if as_of.tzinfo is None:
        print("replay: --as-of 必须带时区，例如 2026-01-01T00:00:00+08:00", file=sys.stderr)
        return 2
    known = event_sourced(names())
    wanted = args.service or known
    unknown = [s for s in wanted if s not in known]
    if unknown:
        print(f"replay: {', '.join(unknown)} 不是事件溯源服务；可选：{', '.join(known)}", file=sys.stderr)
        return 2
    conf = load_config(str(CONFIG))
    client, services = offline_services(str(conf["MONGO_URI"]), args.prefix or str(conf["DB_PREFIX"]), wanted)
    try:
        started = time.perf_counter()
        total, detail = replay_all(services, as_of, workers=max(1, args.workers))
    finally:
        client.close()
    for name, figures in detail.items():
        print(f"{name:<24} {figures['aggregates']} 个聚合 {figures['facts']} 条事实 {figures['seconds']} 秒 "
              f"写入 {figures['written']} 新增发现 {figures['raised']} 消除 {figures['resolved']}")
    print(f"合计 {total.facts} 条事实 / {time.perf_counter() - started:.1f} 秒 = {total.facts_per_s} 条/秒（as_of "
          f"{as_of.isoformat()}）")
    return 0


if __name__ == "__main__":
    sys.exit(main())
