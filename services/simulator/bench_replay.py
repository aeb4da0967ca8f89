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
import importlib
import sys
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from services.kernel.replay import ReplayStats, offline, replay_service

REPLAY_SEED_OFFSET = 7919  # the replayed county is not one of the sustained phase's counties


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


def aggregate_ids(events: Iterable[dict], services: dict[str, Any]) -> dict[str, set[str]]:
    """Service -> ids of the aggregates the events went into (each service's own adapter decides)."""
    out: dict[str, set[str]] = {name: set() for name in services}
    for env in events:
        for name, service in services.items():
            aggregate = service.manifest.aggregate_for(env["type"])
            if aggregate is not None:
                out[name].add(service.adapter(aggregate, env).aggregate_id(env))
    return out


def replay_all(services: dict[str, Any], as_of: datetime,
               ids: dict[str, set[str]] | None = None) -> tuple[ReplayStats, dict[str, dict]]:
    """Replay each service (only `ids[service]` when given); the total and the figures per aggregate."""
    total, detail = ReplayStats(), {}
    for name, service in services.items():
        wanted = None if ids is None else ids.get(name, set())
        if wanted is not None and not wanted:
            continue
        for aggregate, stats in replay_service(service, as_of, wanted).items():
            total.add(stats)
            detail[f"{name}.{aggregate}"] = stats.as_dict()
    return total, detail


def phase(load: Callable[[list[dict]], dict], mongo_uri: str, prefix: str, running: Iterable[str], seed: int,
          run_id: str, others: dict[str, int], settle: Callable[[dict], Any] | None = None) -> dict:
    """The bench's replay phase: load one county year through the running suite, then replay it.

    When the load did not finish in time, `settle(loaded)` drops (or waits out) the rest first, so
    the replay does not share the database with the suite still working through it; the replay
    then covers the facts stored, and says how many of the year's events that is."""
    from services.simulator.bench import SERVICE_OF, ProcessSampler, log
    from services.simulator.generator import county_config, simulate

    running = list(running)
    sim = simulate(county_config("year", seed=seed + REPLAY_SEED_OFFSET, tag=f"{run_id}r"))
    events = [e for e in sim.events if SERVICE_OF.get(e["type"].split(".")[0]) in running]
    log(f"replay: loading one county year ({len(events)} events, {sim.config.region} {sim.config.year}) "
        "through the suite")
    loaded = load(events)
    if not loaded.get("complete") and settle is not None:
        settle(loaded)
    client, services = offline_services(mongo_uri, prefix, event_sourced(running))
    try:
        ids = aggregate_ids(events, services)
        as_of = datetime.now(timezone.utc)
        log(f"replay: re-folding {sum(len(v) for v in ids.values())} aggregates and re-running their rules "
            f"as of {as_of.isoformat(timespec='seconds')}")
        sampler = ProcessSampler({}, others)
        sampler.start()
        total, detail = replay_all(services, as_of, ids)
        _, cpu = sampler.stop()
    finally:
        client.close()
    out = {"what": "re-fold every aggregate of one county year from its stored facts and re-run its rules "
                   "at as_of (services/kernel/replay.py), in the bench process",
           "county": {"region": sim.config.region, "year": sim.config.year, "seed": sim.config.seed,
                      "events": len(events), "summary": sim.summary()},
           "loaded": {k: loaded.get(k) for k in ("handled", "events", "complete", "seconds", "events_per_s")},
           "as_of": as_of.isoformat(), **total.as_dict(), "events_per_s": total.facts_per_s,
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
            f"{result['aggregates']} 个聚合、{result['facts']} 条事实按 as_of 重新折叠并重跑规则，用时 {result['seconds']} 秒；"
            f"写入 {result['written']}，新增发现 {result['raised']}，消除 {result['resolved']}；"
            f"装载经入口 {loaded['handled']}/{loaded['events']} 条，{loaded['events_per_s']} 条/秒；"
            f"重放期间 CPU：{shares or '未知'}，其他进程 {'未知' if others is None else format(others, '.0%')}）")


def main(argv: list[str] | None = None) -> int:
    from services.kernel.config import load_config
    from services.kernel.manifest import names
    from services.launcher import CONFIG

    parser = argparse.ArgumentParser(prog="python -m services.simulator.bench_replay",
                                     description="按 as_of 重放：对已存事实重新折叠聚合并重跑规则（运维在服务器上执行）")
    parser.add_argument("--service", action="append", help="只重放这些服务（可重复；默认全部事件溯源服务）")
    parser.add_argument("--as-of", help="评估时刻（带时区的 ISO 8601；默认现在）")
    parser.add_argument("--prefix", help="数据库前缀（默认 DB_PREFIX）")
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
        total, detail = replay_all(services, as_of)
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
