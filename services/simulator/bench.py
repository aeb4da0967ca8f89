"""The benchmark (`python -m services.simulator.bench`, called by `make bench`).

Simulated counties are the workload; results are printed and written to .run/bench/latest.json
(`--out`).

1. Sustained end-to-end throughput: publish N events as fast as the publisher can; the clock runs
   from the first publish until every published fact is stored. Progress is read from the
   services' own counters (successful calls of the `<kind>.*` ingress handlers on /metrics: a
   handler returns only after its aggregate is saved), because counting the facts in the
   databases (`<DB_PREFIX><service>`: officer, agency, item and case documents, leniency lists)
   costs the database — the bottleneck — seconds per count; that count is taken once after the
   window as a check, and is the fallback when the counters cannot be read. The wait is capped
   (`--max-seconds`); a capped run reports what was handled in the window and says so.
2. Latency at a fixed offered rate (default 1,000 events/s for 20 s): for a sample of events, the
   time from publish until the fact is visible in its aggregate document (polled by `_id`); and
   for personnel and registry events the time until `officer.changed` / `item.changed`, whose id is
   derived from the cause, arrives. When a sample is still not stored after `--saturated-after`
   seconds the suite cannot keep up: the bench stops offering load and reports it saturated; a
   suite it started is then emptied and measured again at half its sustained throughput, which
   shows the pipeline's own latency rather than queueing.
3. Peak memory of every service process (`nameko run`, found through /proc by command line and,
   for a running suite, by the AMQP_URI/DB_PREFIX in its environment): VmRSS sampled, VmHWM read;
   and the CPU seconds each service, the broker, the database and the bench itself used while
   measuring (local servers are found by their listening port), to show where the time goes.
4. The raw ceiling of this machine for the same messages: plain kombu publish → consume → one
   `insert_one` per message into a scratch database on the same MongoDB server; the suite's
   throughput is reported as a ratio of it. It is measured first, before anything is published to
   the suite, once the services' counters have stayed flat (a backlog still draining — a running
   suite's, or a saturated phase's — would take its CPU); the wait is printed.
   After the latency phase the same path also runs at the latency phase's even rate (`raw_at_rate`,
   `--no-raw-at-rate` to leave it out): each message timed from publish until its insert returned,
   and its CPU per event — the p99 target's reference, as the raw ceiling is the throughput's.
   `--pairs K` (default 3) alternates the two K times — raw ceiling, sustained round, raw ceiling,
   sustained round … —, each sustained round with `--events` events of its own, and the pair with
   the median ratio stands for the run (every pair is printed): the machine's speed drifts by a
   third within an hour here, so a raw ceiling measured next to each sustained round divides by the
   machine that round ran on (`median_pair`). The CPU totals leave the later raw rounds out.
   `--pairs 1`: the raw ceiling once, then one sustained phase (the order before 2026-12-02; a raw
   round now takes at most RAW_EVENTS_DEFAULT messages unless `--raw-events` says).

With no suite answering at WEB_SERVER_ADDRESS, the bench starts one (every declared service process,
from the manifests: services/launcher.py `available()`) with its own DB_PREFIX and, when RABBIT_MGMT_URI is set, in a vhost of its own;
afterwards it stops the processes, drops the databases and deletes the vhost (or, without the
management API, purges the suite's queues), so nothing it published can reach another suite.
Event types whose service is not running are left out of the workload and reported.
Targets (services/simulator/bench_verdicts.py): ≥1,500 events/s sustained, p99 ≤ 200 ms at 1,000
events/s offered, ≥0.6 of the raw ceiling, ≤200 MB peak RSS per service process. Each verdict line
states the rate offered while it was measured and the machine's conditions (cores, load averages
before → after, the CPU share other processes took, and which ones); "达标" only when measured at the
target's rate. The summary goes to a JSON file (default .run/bench/latest.json) with the machine's
facts (cores, memory, load, Python, the MongoDB-wire server and its FerretDB backend, git commit).
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import multiprocessing as mp
import os
import platform
import queue as queue_module
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from services.simulator import bench_leftovers
from services.simulator.procfs import cmdline, environ
from services.simulator.bench_db import at_least_one, integer_at_least
from services.simulator.bench_verdicts import Targets, all_met, bracketed_pairs, is_clean
from services.simulator.bench_verdicts import judge as judge_verdicts
from services.simulator.generator import COUNTIES, DeptSpec, county_config, simulate
from services.simulator.ports import free_port
from services.simulator.publish import DEFAULT_AMQP_URI, publish_amqp
from services.simulator.report import EventTap, write_json
from services.simulator.stopping import exit_on_sigterm

TARGETS = Targets()
SERVICES = ("personnel", "registry", "penalty")  # the services the simulated workload's events go to
SERVICE_OF = {"agency": "personnel", "officer": "personnel", "credential": "personnel", "training": "personnel",
              "item": "registry", "standard": "registry", "leniency_list": "registry", "case": "penalty"}
# event type prefix -> (collection, payload key of the aggregate id, output event announcing the new state)
AGGREGATES = {
    "agency": ("agencies", "agency_id", None),
    "officer": ("officers", "officer_id", "officer.changed"),
    "credential": ("officers", "officer_id", "officer.changed"),
    "training": ("officers", "officer_id", "officer.changed"),
    "item": ("items", "item_code", "item.changed"),
    "standard": ("items", "item_code", "item.changed"),
    "case": ("cases", "case_id", None),  # the penalty service publishes findings only, no state event
}
FACT_COLLECTIONS = {"personnel": ("officers", "agencies"), "registry": ("items",), "penalty": ("cases",)}
ROOT = Path(__file__).resolve().parents[2]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- the machine ----------------------------------------------------------------------------------

_NOT_SHOWN = ("URI", "KEY", "PASSWORD", "TOKEN", "SECRET")  # (connection strings and secrets stay out of reports)


def settings_from_environment(env: dict | None = None) -> dict[str, str]:
    """The suite's settings (services/kernel/config.py DEFAULTS, PREFETCH_COUNT) that the environment sets:
    what the processes the bench starts inherit instead of the defaults, e.g. `GATEWAY_BUNDLE_MAX=1` in an
    A/B. Connection strings and secrets are left out."""
    from services.kernel.config import DEFAULTS

    env = os.environ if env is None else env
    return {key: env[key] for key in sorted({*DEFAULTS, "PREFETCH_COUNT"})
            if env.get(key, "") != "" and not any(word in key for word in _NOT_SHOWN) and key != "DB_PREFIX"}


def machine() -> dict:
    info: dict[str, Any] = {"nproc": os.cpu_count(), "python": platform.python_version(),
                            # which build of it (the suite's processes run the bench's own interpreter): builds of
                            # one version differ in speed (docs/benchmark.md, "Forty-fourth session")
                            "python_executable": os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
                            "kernel": platform.release(), "cpu_model": None, "memory_mb": None}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            info["cpu_model"] = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")),
                                     None)
        with open("/proc/meminfo", encoding="utf-8") as fh:
            kb = next(int(line.split()[1]) for line in fh if line.startswith("MemTotal"))
            info["memory_mb"] = round(kb / 1024)
    except (OSError, StopIteration):
        pass
    info["load_avg"] = load_average()
    info["git_commit"] = git_commit()
    return info


def load_average() -> list[float] | None:
    try:
        with open("/proc/loadavg", encoding="ascii") as fh:
            return [float(v) for v in fh.read().split()[:3]]
    except (OSError, ValueError):
        return None


def git_commit() -> str | None:
    """HEAD of this checkout, with "+dirty" when the working tree has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+dirty" if dirty else "")) or None


def database_server(mongo_uri: str) -> dict:
    """The MongoDB-wire server: its version, FerretDB's version and backend (`--handler` of the local
    FerretDB process, read from /proc), or MongoDB itself."""
    import pymongo

    out: dict[str, Any] = {"uri_host": _unix_socket(mongo_uri) or urllib.parse.urlsplit(mongo_uri).hostname}
    client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000)
    try:
        build = client.admin.command("buildInfo")
        out["wire_version"] = build.get("version")
        out["ferretdb"] = build.get("ferretdbVersion")
        out["server"] = "FerretDB" if out["ferretdb"] else "MongoDB"
        pid = client.admin.command("serverStatus").get("pid") if out["ferretdb"] else None
    except Exception as exc:  # a benchmark without this fact still reports the rest
        out["error"] = str(exc)
        return out
    finally:
        client.close()
    if out.get("ferretdb"):
        for candidate in (local_server_pid(mongo_uri, 27017), pid):
            args = cmdline(candidate) if candidate else []
            handler = next((a.split("=", 1)[1] for a in args if a.startswith("--handler=")), None)
            if handler:
                out["backend"] = handler
                out["backend_options"] = [a for a in args if a.startswith(("--sqlite-url", "--postgresql-url"))]
                break
        else:
            out["backend"] = "unknown (FerretDB not local)"
    return out


def cpu_by_process() -> dict[int, tuple[str, float]]:
    """CPU seconds (utime + stime) of every process on the machine, with its short command line."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        head, _, rest = stat.rpartition(")")
        fields = rest.split()
        try:
            used = (int(fields[11]) + int(fields[12])) / tick
        except (IndexError, ValueError):
            continue
        args = cmdline(int(entry.name))
        name = " ".join(args)[:120] if args else head.split("(", 1)[-1]
        out[int(entry.name)] = (name, used)
    return out


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores; /proc/stat, idle and iowait excluded)."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


# -- the suite ------------------------------------------------------------------------------------

def healthy(url: str, timeout: float = 2) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


class Broker:
    """The RabbitMQ management API (RABBIT_MGMT_URI, e.g. http://guest:guest@127.0.0.1:15672): a
    private vhost for a suite the bench starts, and purging what it leaves in its queues."""

    def __init__(self, mgmt_uri: str):
        parts = urllib.parse.urlsplit(mgmt_uri)
        self.base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}"
        user, password = parts.username or "guest", parts.password or "guest"
        self.auth = "Basic " + base64.b64encode(f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"
                                                .encode()).decode()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(self.base + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": self.auth, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=15) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def create_vhost(self, vhost: str, user: str) -> None:
        self._call("PUT", f"/api/vhosts/{urllib.parse.quote(vhost, safe='')}")
        self._call("PUT", f"/api/permissions/{urllib.parse.quote(vhost, safe='')}/{urllib.parse.quote(user, safe='')}",
                   {"configure": ".*", "write": ".*", "read": ".*"})

    def delete_vhost(self, vhost: str) -> None:
        """Delete `vhost`; one that is gone already is no error (a cleanup may find it deleted)."""
        try:
            self._call("DELETE", f"/api/vhosts/{urllib.parse.quote(vhost, safe='')}")
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise

    def queues(self, vhost: str) -> list[str]:
        """Queues of `vhost` another connection may purge (exclusive ones belong to their owner)."""
        listing = self._call("GET", f"/api/queues/{urllib.parse.quote(vhost, safe='')}") or []
        return [q["name"] for q in listing if not q.get("exclusive")]


def suite_queues() -> list[str]:
    """Every queue the suite's services consume (nameko event handlers, their retry queues, the
    gateway's ingress), for purging without the management API."""
    from services.kernel import config, partitions
    from services.kernel.manifest import manifests
    from services.launcher import processes

    names, relaying = ["gateway.ingress"], {m.name for m in manifests() if m.relays_ingress}
    for service in dict.fromkeys(proc.service for proc in processes().values()):  # (a partitioned one once)
        module, cls_name = service.split(":")
        try:
            cls = getattr(__import__(module, fromlist=[cls_name]), cls_name)
        except ImportError:
            continue
        n = partitions.count(cls.name)
        for queue, ep in handler_queues(cls):
            names += [queue] + [f"{queue}.retry.{ms}" for ms in config.DEFAULTS["RETRY_DELAYS_MS"]]
            if n > 1 and ep.source_service in relaying:  # each partition's queue (kernel/partitions.py)
                names += [partitions.queue_name(queue, i) for i in range(n)]
    return names


def handler_queues(cls) -> list[tuple[str, Any]]:
    """(queue, entrypoint) of each nameko event handler of the service class `cls`: its shared queue, named
    as nameko names it (`evt-<source>-<event type>--<service>.<method>`; partition queues add `.p<i>`)."""
    from nameko.events import EventHandler

    return [(f"evt-{ep.source_service}-{ep.event_type}--{cls.name}.{attr}", ep)
            for attr in dir(cls) for ep in getattr(getattr(cls, attr), "nameko_entrypoints", ())
            if isinstance(ep, EventHandler)]


def _per_queue(amqp_uri: str, names: Iterable[str], count: Callable[[Any, str], int | None]) -> int:
    """The sum of `count(channel, queue)` over the queues, a channel each (a queue that does not exist
    closes its channel: it counts 0)."""
    from kombu import Connection

    total = 0
    with Connection(amqp_uri) as conn:
        for name in names:
            channel = conn.channel()
            try:
                total += count(channel, name) or 0
            except Exception:
                pass
            finally:
                try:
                    channel.close()
                except Exception:
                    pass
    return total


def purge_queues(amqp_uri: str, names: Iterable[str]) -> int:
    """Drop what waits in these queues: the messages dropped."""
    return _per_queue(amqp_uri, names, lambda channel, name: channel.queue_purge(name))


def ready_messages(amqp_uri: str, names: Iterable[str]) -> int:
    """Messages waiting in these queues (a passive declare each)."""
    return _per_queue(amqp_uri, names,
                      lambda channel, name: channel.queue_declare(queue=name, passive=True).message_count)


def with_vhost(amqp_uri: str, vhost: str) -> str:
    parts = urllib.parse.urlsplit(amqp_uri)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + urllib.parse.quote(vhost, safe=""), "", ""))


def find_service_processes(amqp_uri: str, prefix: str) -> dict[str, int]:
    """`nameko run` processes of this suite by process key, as a suite the bench starts names them (`penalty`,
    `penalty#2`, …, numbered by pid): service by command line, suite by environment. (Until 2026-12-06 one per
    service: a running suite's second penalty process went unmeasured.)"""
    found: dict[str, int] = {}
    for name, pid in sorted(suite_process_pids(amqp_uri, prefix), key=lambda item: item[1]):
        index = 0
        while replica_key(name, index) in found:
            index += 1
        found[replica_key(name, index)] = pid
    return found


def suite_process_pids(amqp_uri: str, prefix: str) -> Iterator[tuple[str, int]]:
    """Every `nameko run` process of this suite, replicas included: (service, pid)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        args = cmdline(int(entry.name))
        if "nameko" not in " ".join(args) or "run" not in args:
            continue
        target = next((a for a in args if a.startswith("services.") and ":" in a), "")
        name = target.split(".")[1] if target.count(".") >= 2 else ""
        env = environ(int(entry.name))
        if name and env.get("AMQP_URI", DEFAULT_AMQP_URI) == amqp_uri and env.get("DB_PREFIX", "zhifa_") == prefix:
            yield name, int(entry.name)


def replica_key(service: str, index: int) -> str:
    """The bench's name of a service's process: the launcher's (kernel/manifest.py `process_key`)."""
    from services.kernel.manifest import process_key

    return process_key(service, index)


def service_of_key(key: str) -> str:
    from services.kernel.manifest import service_of

    return service_of(key)


def per_service(keys: Iterable[str]) -> dict[str, int]:
    """How many processes each service runs as, from process keys (`penalty`, `penalty#2`, …)."""
    return dict(Counter(service_of_key(key) for key in keys))


def widest(keys: Iterable[str]) -> int:
    """The most processes any one service runs as, among process keys."""
    return max(per_service(keys).values(), default=1)


def partitioned() -> set[str]:
    """The declared services that can run as partitions (a `partition_key`; kernel/partitions.py)."""
    from services.kernel.manifest import manifests

    return {m.name for m in manifests() if m.partition_key}


def parse_replicas(values: list[str] | None) -> dict[str, int]:
    """`--replicas penalty=2` (repeatable) -> {"penalty": 2}; an HTTP-facing process cannot have two
    (they would share one port)."""
    from services.launcher import processes

    table, out = processes(), {}
    for value in values or ():
        name, _, count = value.partition("=")
        if name not in table or not count.isdigit() or int(count) < 1:
            raise SystemExit(f"bench: --replicas {value!r}: expected <service>=<n ≥ 1> with a service of "
                             f"{', '.join(sorted(table))}")
        if table[name].http_port and int(count) > 1:
            raise SystemExit(f"bench: --replicas {value!r}: {name} is HTTP-facing; only one process can serve its port")
        out[name] = int(count)
    return out


# the service logs of this many bench runs are kept (.run/bench/<run id>/, this run's included): at INFO each
# process writes an access line per handled message, ≈ 50–60 MB a `--knee` run, and 400 runs had filled 2.9 GB
RUN_LOGS_KEPT = 20
_RUN_ID = re.compile(r"[0-9a-f]{6}")


def prune_run_logs(base: Path, keep: int) -> list[Path]:
    """Remove all but the `keep` newest run log directories under `base` (by modification time): directories
    named like a run id (six hex digits) that hold nothing but the processes' `*.log` files; anything else under
    `base` is left alone. Returns the directories removed."""
    if not base.is_dir():
        return []
    runs = []
    for entry in base.iterdir():
        try:
            if (entry.is_dir() and not entry.is_symlink() and _RUN_ID.fullmatch(entry.name)
                    and all(f.is_file() and f.suffix == ".log" for f in entry.iterdir())):
                runs.append((entry.stat().st_mtime, entry))
        except OSError:  # (another bench removing it meanwhile)
            continue
    runs.sort(reverse=True)
    removed = []
    for _, entry in runs[max(0, keep):]:
        try:
            for f in entry.iterdir():
                f.unlink()
            entry.rmdir()
            removed.append(entry)
        except OSError:
            continue
    return removed


class Suite:
    """The suite under test: the running one, or processes the bench starts (and stops) itself."""

    def __init__(self, amqp_uri: str, mongo_uri: str, prefix: str, web: str, start: str, log_dir: Path,
                 replicas: dict[str, int] | None = None):
        self.amqp_uri, self.mongo_uri, self.prefix, self.web = amqp_uri, mongo_uri, prefix, web
        self.start_mode, self.log_dir = start, log_dir
        self.replicas = replicas or {}  # service -> processes to start (partitions or competing consumers; PARTITIONS / 1 if absent)
        self.started: dict[str, subprocess.Popen] = {}
        self.health: dict[str, str] = {}
        self.services: list[str] = []

    def __enter__(self) -> "Suite":
        running = healthy(f"http://{self.web}/health")
        if self.start_mode == "no" or (self.start_mode == "auto" and running):
            if not running:
                raise SystemExit(f"bench: no suite answers at http://{self.web}/health")
            from services.launcher import processes  # every declared service process, from the manifests

            self.health = {n: p.health_url() for n, p in processes().items() if p.health_port}
            self.services = [n for n in SERVICES if n in self.health and healthy(self.health[n])]
            log(f"using the running suite at {self.web}: {', '.join(self.services) or 'no services'}")
            return self
        try:
            self._start()
        except BaseException:  # stopped while starting (Ctrl-C, SIGTERM, a service that did not start): stop what started
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        from services.kernel.messaging import declare_topology
        from services.launcher import available, command

        declare_topology(self.amqp_uri)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        from services.kernel import partitions

        # --replicas of a partitioned service sets its partitions (one process each); of another, competing consumers
        counts = {name: n for name, n in self.replicas.items() if name in partitioned()}
        table = available(counts)
        names = list(table)
        base = {**os.environ, "AMQP_URI": self.amqp_uri, "MONGO_URI": self.mongo_uri, "DB_PREFIX": self.prefix,
                "WEB_SERVER_ADDRESS": self.web, "PYTHONWARNINGS": "ignore::DeprecationWarning",
                "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        if counts:
            base["PARTITIONS"] = ",".join(f"{name}={n}" for name, n in {**partitions.checked(), **counts}.items())
        for name, proc in table.items():
            for index in range(1 if proc.partition is not None else self.replicas.get(name, 1)):
                key = replica_key(name, index)
                env = dict(base)
                if proc.partition is not None:
                    env["PARTITION"] = str(proc.partition)
                if proc.metrics_port:
                    env["METRICS_PORT"] = str(free_port())
                    self.health[key] = f"http://127.0.0.1:{env['METRICS_PORT']}/health"
                else:  # HTTP-facing: the gateway on self.web, any other on a free port
                    env["WEB_SERVER_ADDRESS"] = self.web if name == "gateway" else f"127.0.0.1:{free_port()}"
                    self.health[key] = f"http://{env['WEB_SERVER_ADDRESS']}/health"
                out = open(self.log_dir / f"{key}.log", "ab")
                self.started[key] = subprocess.Popen(
                    command(proc),
                    env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        for name, url in self.health.items():
            deadline = time.monotonic() + 90
            while not healthy(url, 1):
                if self.started[name].poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"bench: {name} did not start; see {self.log_dir / (name + '.log')}")
                time.sleep(0.3)
        gone = [name for name, proc in self.started.items() if proc.poll() is not None]
        if gone:
            raise SystemExit(f"bench: {', '.join(gone)} exited while the suite started; see {self.log_dir}")
        self.services = [n for n in SERVICES if n in self.started]
        log(f"started {', '.join(names)} (DB_PREFIX={self.prefix}, logs in {self.log_dir})")

    def __exit__(self, *exc) -> None:
        for proc in self.started.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.started.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def metrics_urls(self) -> dict[str, str]:
        return {name: url[:-len("/health")] + "/metrics" for name, url in self.health.items()
                if service_of_key(name) in SERVICES and service_of_key(name) in self.services}

    def all_metrics_urls(self) -> dict[str, str]:
        """Every process's /metrics (the database commands of the services the workload reaches
        only through their events: handover, inspection, coordination...)."""
        return {name: url[:-len("/health")] + "/metrics" for name, url in self.health.items()}

    def pids(self) -> dict[str, int]:
        if self.started:
            return {name: proc.pid for name, proc in self.started.items()}
        return find_service_processes(self.amqp_uri, self.prefix)


def listener_pid(port: int) -> int | None:
    """The process listening on a local TCP port (the broker, the database), found through /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as fh:
                next(fh)
                for line in fh:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{fields[9]}]")
        except OSError:
            continue
    return _holder(inodes)


def _unix_socket(uri: str) -> str | None:
    """The Unix domain socket a URI names, as pymongo writes one (`mongodb://%2Fpath%2Fto.sock/`), else None."""
    host = urllib.parse.unquote(urllib.parse.urlsplit(uri).netloc.rpartition("@")[2])
    return host if host.startswith("/") and host.endswith(".sock") else None


def local_server_pid(uri: str, default_port: int) -> int | None:
    """The process on this machine serving `uri`: by its Unix socket, or by its TCP port on a loopback host."""
    path = _unix_socket(uri)
    if path:
        return unix_listener_pid(path)
    parts = urllib.parse.urlsplit(uri)
    return listener_pid(parts.port or default_port) if parts.hostname in ("127.0.0.1", "localhost", "::1") else None


def unix_listener_pid(path: str) -> int | None:
    """The process listening on a Unix domain socket at `path` (FerretDB's `--listen-unix`), through /proc."""
    inodes = set()
    try:
        with open("/proc/net/unix", encoding="utf-8", errors="replace") as fh:
            next(fh)
            for line in fh:
                fields = line.split()
                if len(fields) >= 8 and fields[5] == "01" and fields[7] == path:  # (state 01: listening)
                    inodes.add(f"socket:[{fields[6]}]")
    except OSError:
        return None
    return _holder(inodes)


def _holder(inodes: set[str]) -> int | None:
    """The process holding one of these sockets (`socket:[inode]`)."""
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(entry.name)
        except OSError:
            continue
    return None


def postgres_postmaster(ferretdb_pid: int) -> int | None:
    """The local PostgreSQL postmaster behind FerretDB's `--postgresql-url` (a unix socket directory
    given as `host=`: its `.s.PGSQL.<port>.lock` names the postmaster), else None."""
    url = next((a.split("=", 1)[1] for a in cmdline(ferretdb_pid) if a.startswith("--postgresql-url=")), None)
    if not url:
        return None
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    host, port = (query.get("host") or [""])[0], (query.get("port") or ["5432"])[0]
    try:
        pid = int(Path(host, f".s.PGSQL.{port}.lock").read_text(encoding="ascii").split()[0]) if host.startswith("/") else None
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid and Path(f"/proc/{pid}").exists() else None


def infrastructure(amqp_uri: str, mongo_uri: str) -> dict[str, int]:
    """Broker and database processes on this machine, when they listen locally (and FerretDB's
    PostgreSQL, whose CPU is counted with its backends: ProcessSampler.TREES)."""
    out = {}
    for name, uri, default in (("rabbitmq", amqp_uri, 5672), ("mongodb", mongo_uri, 27017)):
        pid = local_server_pid(uri, default)
        if pid:
            out[name] = pid
    postmaster = postgres_postmaster(out["mongodb"]) if "mongodb" in out else None
    if postmaster:
        out["postgresql"] = postmaster
    return out


def children(pid: int) -> set[int]:
    """Live child processes of `pid` (PostgreSQL's backends of the postmaster)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


class ProcessSampler(threading.Thread):
    """Peak VmRSS of the service processes (sampled every `interval` s, plus VmHWM at the end) and
    the CPU seconds every watched process used while sampling (services, broker, database, bench).
    A process named in TREES counts with its children (PostgreSQL: the postmaster, its live
    backends, and the backends it has reaped)."""

    TREES = ("postgresql",)

    def __init__(self, services: dict[str, int], others: dict[str, int], interval: float = 0.5):
        super().__init__(daemon=True, name="process-sampler")
        self.services, self.interval = services, interval
        self.watched = {**services, **others, "bench": os.getpid()}
        self.peak_kb: dict[str, int] = {name: 0 for name in services}
        self._halt = threading.Event()
        self._start = self.snapshot()
        self._all0 = cpu_by_process()
        self.paused_s = 0.0

    @contextlib.contextmanager
    def paused(self):
        """Leave the time of the block out of the CPU totals `stop` reports (window, machine busy, every
        process's seconds), as if the sampler had not been running: a raw ceiling round between two
        sustained rounds is not the suite's work, and its consumer processes would count as "others".
        Peak RSS is still sampled. (The starting points move forward by what the block used.)"""
        before, all_before = self.snapshot(), cpu_by_process()
        try:
            yield
        finally:
            after, all_after = self.snapshot(), cpu_by_process()
            self.paused_s += after["t"] - before["t"]
            for field in ("t", "busy"):
                self._start[field] += after[field] - before[field]
            for name in self.watched:
                self._start["cpu"][name] += max(0.0, after["cpu"][name] - before["cpu"][name])
            for pid, (name, used) in all_after.items():
                if pid in all_before:
                    self._all0[pid] = (name, self._all0.get(pid, (name, 0.0))[1] + used - all_before[pid][1])

    @staticmethod
    def _status(pid: int) -> dict[str, int]:
        out = {}
        try:
            with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
                for line in fh:
                    if line.startswith(("VmRSS:", "VmHWM:")):
                        out[line.split(":")[0]] = int(line.split()[1])
        except OSError:
            pass
        return out

    @staticmethod
    def _cpu(pid: int) -> float:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
        except (OSError, IndexError, ValueError):
            return 0.0

    def _cpu_of(self, name: str, pid: int) -> float:
        if name not in self.TREES:
            return self._cpu(pid)
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            reaped = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime + cstime
        except (OSError, IndexError, ValueError):
            reaped = 0.0
        return self._cpu(pid) + reaped + sum(self._cpu(child) for child in children(pid))

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            for name, pid in self.services.items():
                self.peak_kb[name] = max(self.peak_kb[name], self._status(pid).get("VmRSS", 0))

    def snapshot(self) -> dict:
        """The CPU seconds so far of each watched process and of the whole machine, and when (for a
        phase's own window: `window_cpu`)."""
        return {"t": time.monotonic(), "busy": machine_busy_seconds(),
                "cpu": {name: self._cpu_of(name, pid) for name, pid in self.watched.items()}}

    def stop(self) -> tuple[dict[str, dict], dict[str, Any]]:
        self._halt.set()
        self.join(5)
        end = self.snapshot()
        window = end["t"] - self._start["t"]
        memory = {}
        for name, pid in self.services.items():
            status = self._status(pid)
            memory[name] = {"pid": pid,
                            "peak_rss_mb": round(max(self.peak_kb[name], status.get("VmRSS", 0)) / 1024, 1),
                            "vm_hwm_mb": round(status.get("VmHWM", 0) / 1024, 1) or None}
        capacity = window * (os.cpu_count() or 1)
        cpu = {"window_s": round(window, 1), "processes": {}}
        for name, pid in self.watched.items():
            used = max(0.0, end["cpu"][name] - self._start["cpu"][name])
            cpu["processes"][name] = {"cpu_s": round(used, 1), "share_of_machine": round(used / capacity, 3)}
        if self.paused_s:
            cpu["paused_s"] = round(self.paused_s, 1)
        # what else ran: the machine's busy time minus the watched processes' (exited processes included)
        busy = end["busy"] - self._start["busy"]
        ours = sum(v["cpu_s"] for v in cpu["processes"].values())
        cpu["machine_busy_share"] = round(busy / capacity, 3) if capacity else None
        cpu["others_cpu_share"] = round(max(0.0, busy - ours) / capacity, 3) if capacity and busy else None
        watched_pids = set(self.watched.values())
        for name in self.TREES:
            if name in self.watched:
                watched_pids |= children(self.watched[name])
        after = cpu_by_process()
        others = sorted(((name, used - self._all0.get(pid, (name, 0.0))[1]) for pid, (name, used) in after.items()
                         if pid not in watched_pids), key=lambda kv: -kv[1])
        cpu["others_top"] = [{"process": name, "cpu_s": round(used, 1), "share_of_machine": round(used / capacity, 3)}
                             for name, used in others[:6] if used >= 0.5]
        return memory, cpu


# -- the workload ---------------------------------------------------------------------------------

def workload(count: int, services: Iterable[str], seed: int, run_id: str) -> tuple[list[dict], dict]:
    """At least `count` events of the running services' types, from as many simulated counties as needed."""
    wanted = set(services)
    with_cases = "penalty" in wanted
    events: list[dict] = []
    counties = 0
    excluded: dict[str, int] = {}
    regions = list(COUNTIES)
    while len(events) < count:
        overrides: dict[str, Any] = {"region": regions[counties % len(regions)], "tag": f"{run_id}{counties}"}
        if not with_cases:  # officers and items only: a bigger roster, no cases to generate
            base = county_config("year").departments
            overrides["departments"] = tuple(DeptSpec(d.short, d.officers * 4, d.auxiliaries * 2) for d in base)
            overrides["breach_rates"] = {}
        sim = simulate(county_config("year", seed=seed + counties, **overrides))
        counties += 1
        for env in sim.events:
            service = SERVICE_OF.get(env["type"].split(".")[0])
            if service in wanted:
                events.append(env)
            else:
                excluded[env["type"]] = excluded.get(env["type"], 0) + 1
    by_service: dict[str, int] = {}
    for env in events:
        service = SERVICE_OF[env["type"].split(".")[0]]
        by_service[service] = by_service.get(service, 0) + 1
    return events, {"counties": counties, "events": len(events), "by_service": by_service, "excluded_types": excluded}


def derived_changed_id(envelope: dict) -> str | None:
    """The event id of the `<aggregate>.changed` event the kernel derives from this cause."""
    from services.kernel.aggregates import derived_event_id

    kind = envelope["type"].split(".")[0]
    if kind not in AGGREGATES or AGGREGATES[kind][2] is None:
        return None
    _, key, changed = AGGREGATES[kind]
    return derived_event_id(envelope["event_id"], changed, envelope["payload"][key])


# -- persistence, output events -------------------------------------------------------------------

DATA_COMMANDS = ("find", "getMore", "insert", "update", "delete", "findAndModify", "count", "aggregate")


class Store:
    """Reads the services' databases: how many facts are persisted, and whether one is visible."""

    def __init__(self, mongo_uri: str, prefix: str, services: Iterable[str]):
        import pymongo

        self.client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000, tz_aware=True)
        self.prefix = prefix
        self.services = list(services)
        self.scan_seconds = 0.0

    def close(self) -> None:
        self.client.close()

    def db(self, service: str):
        return self.client[f"{self.prefix}{service}"]

    def commands(self) -> dict[str, int] | None:
        """The data commands the MongoDB-wire server has run so far, by name (serverStatus
        `metrics.commands`, kept by FerretDB and MongoDB alike): server-wide, every client counted."""
        try:
            counted = self.client.admin.command("serverStatus").get("metrics", {}).get("commands", {})
        except Exception:  # a server that does not tell: the figure is left out
            return None
        return {name: int(counted[name].get("total", 0)) for name in DATA_COMMANDS
                if isinstance(counted.get(name), dict)}

    def persisted(self) -> int:
        """Facts in the aggregate documents plus leniency lists (one document per list)."""
        started = time.monotonic()
        total = 0
        for service in self.services:
            db = self.db(service)
            for name in FACT_COLLECTIONS.get(service, ()):
                total += sum(len(doc.get("fact_ids") or ()) for doc in db[name].find({}, {"fact_ids": 1, "_id": 0}))
            if service == "registry":
                total += db.leniency_lists.count_documents({})
        self.scan_seconds = time.monotonic() - started
        return total

    def facts_of(self, service: str, collection: str, agg_ids: Iterable[str]) -> dict[str, set[str]]:
        """The facts stored in each of these aggregate documents (one read through the `_id` index; an
        aggregate not stored yet is left out)."""
        return {doc["_id"]: set(doc.get("fact_ids") or ())
                for doc in self.db(service)[collection].find({"_id": {"$in": list(agg_ids)}}, {"fact_ids": 1})}


@dataclass
class OutputEvents:
    """Arrival times of the suite's output events, by event id (cheap: no full JSON decode)."""

    arrivals: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    last: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_raw(self, routing_key: str, body: bytes, at: float) -> None:
        marker = body.find(b'"event_id": "')
        width = len(b'"event_id": "')
        if marker < 0:
            marker, width = body.find(b'"event_id":"'), len(b'"event_id":"')
        event_id = body[marker + width:marker + width + 36].decode() if marker >= 0 else None
        with self.lock:
            self.counts[routing_key] = self.counts.get(routing_key, 0) + 1
            self.last = at
            if event_id:
                self.arrivals[event_id] = at


class RawTap(EventTap):
    """EventTap that hands over the routing key and raw body instead of a decoded envelope."""

    def __init__(self, amqp_uri: str, services: Iterable[str], sink: OutputEvents):
        super().__init__(amqp_uri, [(f"{s}.events", "#") for s in services], lambda env, t: None,
                         name="zhifa-bench-output")
        self.sink = sink

    def _message(self, body, message) -> None:
        now = time.monotonic()
        self.received += 1
        self.last_at = now
        raw = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        self.sink.on_raw(message.delivery_info.get("routing_key", ""), raw, now)


_SAMPLE = re.compile(r"^(zhifa_entrypoint_(?:calls|errors)_total)\{([^}]*)\}\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def samples(text: str, pattern: re.Pattern) -> Iterator[tuple[tuple[str, ...], dict[str, str], float]]:
    """The samples of one /metrics page that `pattern` matches (its groups: parts of the name, then the labels,
    then the value): (the name's parts, the labels, the value)."""
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            *names, labels, value = match.groups()
            yield tuple(names), dict(_LABEL.findall(labels)), float(value)


def grown(before: dict[str, str], after: dict[str, str], parse: Callable[[str], dict]) -> dict:
    """What each key's figures grew by between two readings of the same /metrics pages (`parse` of a page: key ->
    a figure, or a list of figures), summed over the pages read both times."""
    totals: dict = {}
    for url in before:
        if url not in after:
            continue
        old = parse(before[url])
        for key, value in parse(after[url]).items():
            was = old.get(key)
            if isinstance(value, list):
                acc = totals.setdefault(key, [0.0] * len(value))
                for i, figure in enumerate(value):
                    acc[i] += figure - (was[i] if was else 0.0)
            else:
                totals[key] = totals.get(key, 0.0) + value - (was or 0.0)
    return totals


class HandledCounter:
    """Ingress facts the services have handled, from their Prometheus counters: calls minus errors
    of the entrypoints subscribed to `<kind>.*` in the owning service. A handler returns only after
    its aggregate is saved, so this follows what is stored without touching the database."""

    def __init__(self, urls: dict[str, str], every: dict[str, str] | None = None):
        self.urls = urls
        self.every = every or urls  # every process's /metrics: where the database commands are counted

    # only the two counters read (kernel/metrics.py `metrics_payload`): polled twice a second, a whole
    # page would cost the busiest service ~3% of its CPU in rendering (py-spy, tenth session)
    QUERY = "?name%5B%5D=zhifa_entrypoint_calls_total&name%5B%5D=zhifa_entrypoint_errors_total"

    def __call__(self) -> int | None:
        return summed_pages({service: url + self.QUERY for service, url in self.urls.items()}, self._ingress)

    @staticmethod
    def _ingress(service: str, text: str) -> float:
        total = 0.0
        for (name,), labels, value in samples(text, _SAMPLE):
            pattern = labels.get("event_type", "")
            kind = pattern[:-2] if pattern.endswith(".*") else None
            if labels.get("service") == service_of_key(service) and SERVICE_OF.get(kind) == service_of_key(service):
                total += value if name == "zhifa_entrypoint_calls_total" else -value
        return total


def summed_pages(urls: dict[str, str], count: Callable[[str, str], float]) -> int | None:
    """The sum of `count(name, page text)` over these /metrics pages; None when one does not answer."""
    total = 0.0
    for name, url in urls.items():
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                text = resp.read().decode()
        except OSError:
            return None
        total += count(name, text)
    return int(total)


def every_message_handled(urls: dict[str, str]) -> Callable[[], int | None]:
    """Messages every service process has handled so far (calls of its event and consumer entrypoints;
    timers, RPC and HTTP left out: a sweep's tick is not a backlog): flat while nothing is left for the
    services to take, e.g. the findings other services relay to coordination. Whole pages (read after
    the measurements: their rendering costs nothing measured), since the API's /metrics, an HTTP route
    with its query parameters checked, refuses `name[]`."""
    return lambda: summed_pages(urls, lambda _name, text: messages_handled(text))


def messages_handled(text: str) -> float:
    """Calls of message entrypoints on one /metrics page (kernel/metrics.py labels a call with the event
    type it handles, or with its entrypoint's kind: NOT_MESSAGES are not messages of a queue)."""
    from services.kernel.metrics import NOT_MESSAGES

    return sum(value for (name,), labels, value in samples(text, _SAMPLE)
               if name == "zhifa_entrypoint_calls_total" and labels.get("event_type", "other") not in NOT_MESSAGES)


def drain(waiting: Callable[[], int], handled: Callable[[], int | None], timeout: float, quiet: float = 3.0,
          interval: float = 1.0, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> dict:
    """Wait until no message waits in the suite's queues and the services' handled count stayed the same
    for `quiet` seconds (what they had taken is done too), at most `timeout`: {"waited_s", "drained",
    "left": messages still waiting at the end}."""
    seen: list = []

    def read() -> tuple:
        seen[:] = [(waiting(), handled())]
        return seen[0]

    out = wait_until_flat(read, timeout, quiet, interval, clock, sleep,
                          until=lambda now: now[0] == 0 and now[1] is not None)
    drained = out["quiet"] is True
    return {"waited_s": out["waited_s"], "drained": drained, "left": 0 if drained else seen[0][0]}


_DB_SAMPLE = re.compile(r"^zhifa_db_(commands|command_seconds|ops)_total\{([^}]*)\}\s+(\S+)$")
_DB_FIELD = {"commands": 0, "command_seconds": 1, "ops": 2}


def parse_db_commands(text: str) -> dict[tuple[str, str, str], list[float]]:
    """(service, collection, command) -> [commands, seconds, operations] from one /metrics page
    (kernel/mongo.py; a page without operations counts each command as one)."""
    out: dict[tuple[str, str, str], list[float]] = {}
    ops_seen = set()
    for (field,), labels, value in samples(text, _DB_SAMPLE):
        key = (labels.get("service", "?"), labels.get("collection", "?"), labels.get("command", "?"))
        out.setdefault(key, [0.0, 0.0, 0.0])[_DB_FIELD[field]] += value
        if field == "ops":
            ops_seen.add(key)
    for key, row in out.items():
        if key not in ops_seen:
            row[2] = row[0]
    return out


def metric_pages(urls: dict[str, str]) -> dict[str, str]:
    """Each service process's /metrics page now (a page that does not answer is left out)."""
    pages: dict[str, str] = {}
    for url in dict.fromkeys(urls.values()):  # one page per process (two services may share one)
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                pages[url] = resp.read().decode()
        except OSError:
            continue
    return pages


def db_commands(pages: dict[str, str]) -> dict[str, dict[tuple[str, str, str], list[float]]]:
    """The database commands each service process has sent so far, by /metrics page (`metric_pages`;
    `commands_per_event` compares the pages read both times)."""
    return {url: parse_db_commands(text) for url, text in pages.items()}


_DUE_SAMPLE = re.compile(r"^zhifa_(deadline_sweep_judged|marked_due|projection_cache)_total\{([^}]*)\}\s+(\S+)$")


def parse_due_work(text: str) -> dict[str, float]:
    """From one /metrics page: aggregates the deadline sweep judged again (`judged`), those made due
    by a change their judgement may read, by cause (`marked:<cause>`), and those an end check had to
    check against everything they read because the change log had lost entries (`unknown`; most of
    them are not made due), summed over the services."""
    out: dict[str, float] = {}
    for (name,), labels, value in samples(text, _DUE_SAMPLE):
        if name == "projection_cache":
            if labels.get("result") != "unknown":
                continue
            key = "unknown"
        else:
            key = "judged" if name == "deadline_sweep_judged" else f"marked:{labels.get('cause', '?')}"
        out[key] = out.get(key, 0.0) + value
    return out


def due_work_per_event(before: dict[str, str], after: dict[str, str], events: int) -> dict:
    """What the deadline sweep did per event between two readings of the same pages: aggregates judged
    again, aggregates made due by cause (officer, item, party, projection read), and aggregates checked
    by an end check whose change log had lost entries."""
    totals = grown(before, after, parse_due_work)
    marked = {k.split(":", 1)[1]: round(v / events, 3) for k, v in sorted(totals.items()) if k.startswith("marked:") and v}
    return {"sweep_judged_per_event": round(totals.get("judged", 0.0) / events, 3),
            "marked_due_per_event": round(sum(marked.values()), 3), "marked_due_by_cause": marked,
            "checked_unknown_per_event": round(totals.get("unknown", 0.0) / events, 3)}


_WORKER_SAMPLE = re.compile(r"^zhifa_(batch_messages|entrypoint_latency_seconds)_(sum|count)\{([^}]*)\}\s+(\S+)$")
_WORKER_FIELD = {("batch_messages", "sum"): 0, ("batch_messages", "count"): 1,
                 ("entrypoint_latency_seconds", "sum"): 2, ("entrypoint_latency_seconds", "count"): 3}


def parse_workers(text: str) -> dict[str, list[float]]:
    """From one /metrics page: "service.entrypoint" -> [messages, batches, seconds, calls] so far: the messages
    handed to batch workers and their number (kernel/metrics.py `zhifa_batch_messages`: the fact services' batch
    handlers and the gateway's ingress), and the time the entrypoint's workers took and how many ran
    (`zhifa_entrypoint_latency_seconds`, one observation per worker: per batch for a batch handler)."""
    out: dict[str, list[float]] = {}
    for names, labels, value in samples(text, _WORKER_SAMPLE):
        key = f"{labels.get('service', '?')}.{labels.get('entrypoint', '?')}"
        out.setdefault(key, [0.0, 0.0, 0.0, 0.0])[_WORKER_FIELD[names]] += value
    return out


def workers_between(before: dict[str, str], after: dict[str, str], events: int) -> dict:
    """The workers each entrypoint ran between two readings of the same pages, per 1,000 events, and how long
    one took (`mean_ms`); for a batch handler also the mean batch (`mean_messages`: the items handed to one
    worker, each event of a bundle counted, as `zhifa_batch_messages` counts them). An even rate makes smaller
    batches than a burst, and each batch pays its commands; timers (the deadline sweep) run beside them."""
    totals = grown(before, after, parse_workers)
    out = {}
    for key, (m, b, sec, calls) in sorted(totals.items(), key=lambda kv: -kv[1][2]):  # (the longest in total first)
        if calls <= 0 and b <= 0:
            continue
        row = {"per_1000_events": round(max(calls, b) * 1000 / events, 2)}
        if b > 0:
            row["mean_messages"] = round(m / b, 1)
        if calls > 0:
            row["mean_ms"] = round(sec * 1000 / calls, 1)
            row["ms_per_event"] = round(sec * 1000 / events, 3)
        out[key] = row
    return out


def server_commands_per_event(before: dict[str, int], after: dict[str, int], events: int) -> dict[str, float]:
    """The data commands the server ran per event between two readings of `Store.commands` (server-wide: on a
    server other clients use too, their commands are counted as well), those that ran at all."""
    return {name: round((after.get(name, 0) - before.get(name, 0)) / events, 2)
            for name in DATA_COMMANDS if after.get(name, 0) - before.get(name, 0) > 0}


def phase_work(pages_before: dict[str, str], pages_after: dict[str, str], events: int) -> dict:
    """The services' database commands by collection, their batches and the deadline sweep's work between two
    readings of their /metrics pages, per event (both phases report them, so a burst and an even rate compare)."""
    before, after = db_commands(pages_before), db_commands(pages_after)
    both = [url for url in before if url in after]
    out: dict[str, Any] = {}
    if both and events:
        out["db_commands_by_collection"] = commands_per_event(_summed(before, both), _summed(after, both), events)
        out["workers"] = workers_between(pages_before, pages_after, events)
        # the deadline sweep's share of the work: what it judged again, and what made those due
        out["due_work"] = due_work_per_event(pages_before, pages_after, events)
    return out


def _summed(pages: dict[str, dict], urls) -> dict[tuple[str, str, str], list[float]]:
    total: dict[tuple[str, str, str], list[float]] = {}
    for url in urls:
        for key, values in pages[url].items():
            acc = total.setdefault(key, [0.0, 0.0, 0.0])
            for i, value in enumerate(values):
                acc[i] += value
    return total


def _with_ops(values) -> tuple[float, float, float]:
    """(commands, seconds, operations); without operations (an older page) one per command."""
    return (values[0], values[1], values[2] if len(values) > 2 else values[0])


def commands_per_event(before: dict, after: dict, events: int, top: int = 10) -> dict:
    """Database commands per event by service x collection (the `top` busiest, with the commands in
    each, the operations they carried and the time the service waited for them), and the services' total."""
    groups: dict[tuple[str, str], dict] = {}
    for key, values in after.items():
        n, sec, ops = _with_ops(values)
        n0, sec0, ops0 = _with_ops(before.get(key, (0.0, 0.0, 0.0)))
        if n - n0 <= 0:
            continue
        group = groups.setdefault(key[:2], {"service": key[0], "collection": key[1], "commands": 0.0,
                                            "seconds": 0.0, "ops": 0.0, "by_command": {}})
        group["commands"] += n - n0
        group["seconds"] += sec - sec0
        group["ops"] += ops - ops0
        group["by_command"][key[2]] = group["by_command"].get(key[2], 0.0) + n - n0
    ranked = sorted(groups.values(), key=lambda g: (-g["ops"], -g["commands"]))  # (the operations are the work)
    rows = [{"service": g["service"], "collection": g["collection"],
             "commands_per_event": round(g["commands"] / events, 3),
             "ops_per_event": round(g["ops"] / events, 3),
             "wait_ms_per_event": round(g["seconds"] * 1000 / events, 3),
             "by_command": {c: round(n / events, 3) for c, n in sorted(g["by_command"].items(), key=lambda cn: -cn[1])}}
            for g in ranked]
    by_service: dict[str, float] = {}
    ops_by_service: dict[str, float] = {}
    for g in ranked:
        by_service[g["service"]] = by_service.get(g["service"], 0.0) + g["commands"]
        ops_by_service[g["service"]] = ops_by_service.get(g["service"], 0.0) + g["ops"]
    return {"events": events, "total_per_event": round(sum(g["commands"] for g in ranked) / events, 3),
            "ops_per_event": round(sum(g["ops"] for g in ranked) / events, 3),
            "by_service": {k: round(v / events, 3) for k, v in sorted(by_service.items(), key=lambda kv: -kv[1])},
            "ops_by_service": {k: round(v / events, 3)
                               for k, v in sorted(ops_by_service.items(), key=lambda kv: -kv[1])},
            "top": rows[:top], "rest_per_event": round(sum(g["commands"] for g in ranked[top:]) / events, 3),
            "rest": rows[top:]}


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"samples": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(round(p * len(ordered) + 0.5)) - 1))]

    return {"samples": len(ordered), "p50_ms": round(rank(0.50) * 1000, 1), "p95_ms": round(rank(0.95) * 1000, 1),
            "p99_ms": round(rank(0.99) * 1000, 1), "max_ms": round(ordered[-1] * 1000, 1)}


# -- phases -----------------------------------------------------------------------------------------

def window_cpu(before: dict, after: dict, events: int) -> dict:
    """CPU of one phase's window from two `ProcessSampler.snapshot`s: the machine's busy share (all cores)
    and each watched process's cores and milliseconds per event, busiest first."""
    seconds = after["t"] - before["t"]
    capacity = seconds * (os.cpu_count() or 1)
    used = {name: max(0.0, after["cpu"][name] - before["cpu"].get(name, 0.0)) for name in after["cpu"]}
    ranked = sorted(used.items(), key=lambda kv: -kv[1])
    return {"window_s": round(seconds, 2), "cores": os.cpu_count() or 1,
            "machine_busy_share": round((after["busy"] - before["busy"]) / capacity, 3) if capacity else None,
            "ms_per_event_all": round(sum(used.values()) * 1000 / events, 2) if events else None,
            "processes": {name: {"cores": round(cpu / seconds, 3) if seconds else None,
                                 "ms_per_event": round(cpu * 1000 / events, 3) if events else None}
                          for name, cpu in ranked if cpu > 0}}


def since(now: int | None, first: int) -> int | None:
    """Facts handled since the counters read `first`; None when they did not answer now."""
    return None if now is None else now - first


def sustained(events: list[dict], amqp_uri: str, store: Store, output: OutputEvents, stall: float,
              max_seconds: float, handled: HandledCounter, sampler: "ProcessSampler | None" = None) -> dict:
    """Publish as fast as possible; count until every fact is handled (service counters, cheap), or
    poll the databases when the counters are not reachable; verify with one database count."""
    baseline = store.persisted()
    first = handled()
    count = (lambda: since(handled(), first)) if first is not None else (lambda: store.persisted() - baseline)
    method = "service counters (handled ingress events)" if first is not None else "database poll"
    raised_before = output.counts.get("finding.raised", 0)
    log(f"sustained: publishing {len(events)} events as fast as possible (progress by {method})")
    commands_before = store.commands()
    pages_before = metric_pages(handled.every)
    cpu_before = sampler.snapshot() if sampler is not None else None
    stats = publish_amqp(events, amqp_uri)
    log(f"published in {stats.elapsed:.1f}s ({stats.rate:.0f}/s offered); waiting until every fact is stored")
    done_at, done, progress_at, last_done = None, 0, time.monotonic(), -1
    interval = 0.5
    while True:
        reading = count()  # (None: a service's counters did not answer this time; the last reading stands)
        done = max(last_done if reading is None else reading, 0)
        now = time.monotonic()
        if done >= len(events):
            done_at = now
            break
        if done != last_done:
            progress_at, last_done = now, done
        elif now - progress_at > stall:
            break
        if now - stats.started > max_seconds:
            progress_at = now
            break
        if first is None:
            interval = max(0.5, 3 * store.scan_seconds)
        time.sleep(interval)
    cpu_after = sampler.snapshot() if sampler is not None else None  # (taken when the last fact was counted)
    end = done_at or progress_at
    seconds = end - stats.started
    commands_after = store.commands()
    pages_after = metric_pages(handled.every)
    stored = store.persisted() - baseline  # one count, after the window: the scan cannot slow the run
    with output.lock:
        last_output = output.last
        raised = output.counts.get("finding.raised", 0) - raised_before
    # incomplete (time cap or stall): the rate is what was handled in the window measured
    out = {"events": len(events), "handled": done, "stored_after_window": stored, "baseline": baseline,
           "complete": done_at is not None, "seconds": round(seconds, 2),
           "events_per_s": round(done / seconds, 1) if seconds > 0 else None,
           "publish_seconds": round(stats.elapsed, 2), "publish_rate_per_s": round(stats.rate, 1),
           "completion": method, "poll_interval_s": round(interval, 2), "findings_raised": raised}
    if commands_before is not None and commands_after is not None and done:
        # the work per event, which a loaded machine slows down but does not change (server-wide:
        # on a server other clients use too, their commands are counted as well)
        out["database_commands_per_event"] = server_commands_per_event(commands_before, commands_after, done)
    if done:
        # the services' own commands (kernel/mongo.py listener), by service x collection: where the work is;
        # and the batches each handler ran
        out.update(phase_work(pages_before, pages_after, done))
    if cpu_before is not None and cpu_after is not None and done_at is not None and done:
        # the window of this phase alone (publishing included): what each process spends per event
        out["cpu"] = window_cpu(cpu_before, cpu_after, done)
    if done_at and last_output and stats.started < last_output <= done_at:
        out["events_per_s_by_last_output_event"] = round(done / (last_output - stats.started), 1)
    log(f"sustained: {done}/{len(events)} handled in {out['seconds']}s → {out['events_per_s']} events/s "
        f"({stored} facts stored by the end of the window); {raised} findings raised")
    return out


class VisibilitySampler(threading.Thread):
    """Polls sampled facts by `_id` until they show up in their aggregate document.

    Each sample is looked at again after max(20 ms, 10% of its age), at most every 0.5 s: the
    error stays within ~10% of the latency measured, and a backlog of waiting samples cannot turn
    the sampler into a load of its own on the database. The samples due at one tick (`TICK`, 20 ms,
    the shortest wait anyway) are looked at together, one `_id: {$in: …}` read per collection: one
    read per sample cost the database ≈ 0.24 commands per event at 1,000 events/s (as much as the
    services' own reads), load the suite measured would not have without the bench.
    """

    TICK = 0.02

    def __init__(self, store: Store):
        super().__init__(daemon=True, name="visibility-sampler")
        self.store = store
        self.pending: dict[str, tuple[str, str, str, float]] = {}
        self.next_look: dict[str, float] = {}
        self.settled: list[tuple[str, float, float]] = []  # (the aggregates' collection, sent at, latency) of each sample seen
        self.lock = threading.Lock()
        self._halt = threading.Event()

    @property
    def latencies(self) -> list[float]:
        return [latency for _, _, latency in self.settled]

    @property
    def by_collection(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for collection, _, latency in self.settled:
            out.setdefault(collection, []).append(latency)
        return out

    @property
    def by_sent(self) -> list[tuple[float, float]]:
        return [(sent, latency) for _, sent, latency in self.settled]

    def oldest_wait(self) -> float:
        with self.lock:
            oldest = min((sent for *_, sent in self.pending.values()), default=None)
        return time.monotonic() - oldest if oldest is not None else 0.0

    def add(self, event_id: str, service: str, collection: str, agg_id: str, sent: float) -> None:
        with self.lock:
            self.pending[event_id] = (service, collection, agg_id, sent)
            self.next_look[event_id] = sent + 0.02

    def look(self, now: float) -> None:
        """One tick: read the aggregates of the samples due, one read per collection, and settle each sample
        whose fact is there (its latency) or set its next look."""
        groups: dict[tuple[str, str], list[tuple[str, str, float]]] = {}
        with self.lock:
            for event_id, (service, collection, agg_id, sent) in self.pending.items():
                if self.next_look[event_id] <= now:
                    groups.setdefault((service, collection), []).append((event_id, agg_id, sent))
        for (service, collection), due in groups.items():
            facts = self.store.facts_of(service, collection, {agg_id for _, agg_id, _ in due})
            seen = time.monotonic()
            with self.lock:
                for event_id, agg_id, sent in due:
                    if event_id in facts.get(agg_id, ()):
                        self.pending.pop(event_id, None)
                        self.next_look.pop(event_id, None)
                        self.settled.append((collection, sent, seen - sent))
                    else:
                        self.next_look[event_id] = seen + min(0.5, max(0.02, (seen - sent) * 0.1))

    def run(self) -> None:
        while not self._halt.is_set():
            started = time.monotonic()
            self.look(started)
            time.sleep(max(0.0, started + self.TICK - time.monotonic()))

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def by_half(by_sent: list[tuple[float, float]], start: float, seconds: float) -> dict:
    """The latencies of the samples sent in the first and in the second half of a publishing window (`start`,
    monotonic, and its length): a suite that keeps up at the rate offered shows about the same figures in both,
    one that falls behind a growing second half, since every sample queues behind the backlog before it."""
    middle = start + seconds / 2
    return {"half_s": round(seconds / 2, 2),
            "first": percentiles([lat for sent, lat in by_sent if sent < middle]),
            "second": percentiles([lat for sent, lat in by_sent if sent >= middle])}


def latency(events: list[dict], amqp_uri: str, store: Store, output: OutputEvents, rate: float, sample: int,
            services: Iterable[str], wait: float, saturated_after: float,
            procs: "ProcessSampler | None" = None, metric_urls: dict[str, str] | None = None) -> dict:
    """Publish at `rate` and time a sample of the events until their facts are visible (and their output
    events arrive). With `procs`, also the CPU per event at this rate: from the first publish until every
    sampled fact was visible (what the suite still works on after that is left out, so the figure errs
    low; an even rate costs more per event than a burst, which comes in full batches). With `metric_urls` (each
    service process's /metrics), also the services' database commands, their workers and the deadline sweep's work
    per event in the same window (`phase_work`)."""
    running = set(services)
    sampler = VisibilitySampler(store)
    sampler.start()
    sent_at: dict[str, float] = {}
    expected_changed: dict[str, str] = {}
    counter = 0

    def on_sent(env: dict, t: float) -> None:
        nonlocal counter
        kind = env["type"].split(".")[0]
        changed = derived_changed_id(env)
        if changed:
            expected_changed[changed] = env["event_id"]
            sent_at[env["event_id"]] = t
        if kind in AGGREGATES and SERVICE_OF[kind] in running:
            counter += 1
            if counter % sample == 0:
                collection, key, _ = AGGREGATES[kind]
                sampler.add(env["event_id"], SERVICE_OF[kind], collection, env["payload"][key], t)

    log(f"latency: offering {rate:.0f} events/s for {len(events) / rate:.0f}s, sampling 1 in {sample} by database")
    cpu_before = procs.snapshot() if procs is not None else None
    commands_before = store.commands()
    pages_before = metric_pages(metric_urls) if metric_urls else {}
    # a sample still invisible after `saturated_after` seconds means the suite cannot keep up:
    # offering more only grows the backlog, so stop and say so
    stats = publish_amqp(events, amqp_uri, rate=rate, on_sent=on_sent,
                         stop=lambda: sampler.oldest_wait() > saturated_after)
    stopped_early = stats.published < len(events)
    deadline = time.monotonic() + wait
    while sampler.pending and time.monotonic() < deadline:
        time.sleep(0.1)
    cpu_after = procs.snapshot() if procs is not None else None
    commands_after = store.commands()
    pages_after = metric_pages(metric_urls) if metric_urls else {}
    time.sleep(1.0)  # let the last output events arrive
    sampler.stop()
    with output.lock:
        changed = [output.arrivals[cid] - sent_at[eid] for cid, eid in expected_changed.items()
                   if cid in output.arrivals]
    visible = percentiles(sampler.latencies)
    # saturated: publishing had to stop, or facts waited longer than the threshold anyway
    saturated = stopped_early or bool(sampler.pending) or (visible["max_ms"] or 0) > saturated_after * 1000
    visible["not_visible_within_s"] = {"seconds": wait, "count": len(sampler.pending)}
    # by the kind of aggregate (cases: penalty; officers, agencies: personnel; items: registry): which one lags
    visible["by_collection"] = {name: percentiles(values) for name, values in sorted(sampler.by_collection.items())}
    if stats.published:
        visible["by_half"] = by_half(sampler.by_sent, stats.started, stats.elapsed)
    by_output = percentiles(changed)
    by_output["expected"] = len(expected_changed)
    out = {"offered_rate_per_s": rate, "achieved_rate_per_s": round(stats.rate, 1), "events": stats.published,
           "seconds": round(stats.elapsed, 2), "saturated": saturated, "fact_visible": visible,
           "output_event": by_output}
    if cpu_before is not None and cpu_after is not None and stats.published and not sampler.pending:
        # (a backlog left undrained would leave its work out of the window: no figure then)
        out["cpu"] = window_cpu(cpu_before, cpu_after, stats.published)
    if stats.published and not sampler.pending:
        # the same window's work per event, as the sustained phase gives it for a burst
        if commands_before is not None and commands_after is not None:
            out["database_commands_per_event"] = server_commands_per_event(commands_before, commands_after,
                                                                           stats.published)
        out.update(phase_work(pages_before, pages_after, stats.published))
    if stopped_early:
        out["note"] = (f"publishing stopped after {stats.published} of {len(events)} events: a sampled fact was "
                       f"still not stored {saturated_after:g}s after it was published")
    log(("latency: saturated" + (", stopped offering load; " if stopped_early else "; ") if saturated else "latency: ")
        + f"fact visible p50 {visible['p50_ms']} ms, p95 {visible['p95_ms']} ms, p99 {visible['p99_ms']} ms "
        f"({visible['samples']} samples, {len(sampler.pending)} not visible); output event p99 {by_output['p99_ms']} ms")
    return out


def _raw_consumer(amqp_uri: str, queue: str, mongo_uri: str, db_name: str, expected: int, prefetch: int,
                  consumed, last_at, ready, times=None) -> None:
    """One raw consumer process: consume, insert_one per message, ack. With `times` (a queue), it also notes
    when each message's insert returned (the monotonic clock, which every process here shares) and puts
    that list of (event id, time) on `times` before it ends."""
    import pymongo
    from kombu import Connection, Consumer, Queue

    collection = pymongo.MongoClient(mongo_uri)[db_name]["messages"]
    stored: list[tuple[str, float]] = []

    def on_message(body, message):
        doc = json.loads(message.body)
        doc["_id"] = doc.get("event_id") or str(uuid.uuid4())
        collection.insert_one(doc)
        if times is not None:
            stored.append((doc["_id"], time.monotonic()))
        message.ack()
        with consumed.get_lock():
            consumed.value += 1
        last_at.value = time.monotonic()

    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        channel.basic_qos(0, prefetch, False)
        consumer = Consumer(channel, queues=[Queue(queue, no_declare=True)], callbacks=[on_message],
                            accept=["json", "application/json"])
        consumer.consume()
        ready.set()
        deadline, parent = time.monotonic() + 900, os.getppid()
        # (a bench killed before its cleanup leaves no consumer behind: one whose parent is gone stops)
        while consumed.value < expected and time.monotonic() < deadline and os.getppid() == parent:
            try:
                conn.drain_events(timeout=1)
            except (socket.timeout, TimeoutError):
                continue
    if times is not None:
        times.put(stored)


@dataclass
class RawPath:
    """The raw path's exchange and queue (`name`), and its consumer processes with their shared counters."""
    name: str
    expected: int
    consumed: Any
    last_at: Any
    procs: list
    times: Any = None

    def pids(self) -> dict[str, int]:
        return {f"raw consumer {i + 1}": proc.pid for i, proc in enumerate(self.procs)}

    def wait(self, timeout: float) -> bool:
        """Until every expected message was consumed (True), at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.consumed.value < self.expected and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.consumed.value >= self.expected

    def stored_at(self, timeout: float = 30) -> dict[str, float]:
        """When each message's insert returned, by event id (a timed path, after `wait`): every consumer's list."""
        out: dict[str, float] = {}
        for _ in self.procs:
            try:
                out.update(self.times.get(timeout=timeout))
            except queue_module.Empty:  # (a consumer that never finished: its messages stay untimed)
                break
        return out


@contextlib.contextmanager
def raw_path(amqp_uri: str, mongo_uri: str, prefix: str, consumers: int, prefetch: int, run_id: str,
             expected: int, timed: bool = False) -> Iterator[RawPath]:
    """The machine's raw path for `expected` messages: a scratch exchange, queue and database and `consumers`
    consumer processes (`_raw_consumer`), ready when this yields; all of it removed on leaving."""
    import pymongo
    from kombu import Connection, Exchange, Queue

    name = f"zhifa.bench.raw.{run_id}"
    db_name = f"{prefix}bench_raw_{run_id}"
    exchange = Exchange(name, type="topic", durable=True)
    queue = Queue(name, exchange=exchange, routing_key="#", durable=True)
    with Connection(amqp_uri) as conn:
        queue(conn.channel()).declare()
    ctx = mp.get_context("spawn")
    consumed, last_at = ctx.Value("i", 0), ctx.Value("d", 0.0)
    times = ctx.Queue() if timed else None
    readies = [ctx.Event() for _ in range(consumers)]
    procs = [ctx.Process(target=_raw_consumer, args=(amqp_uri, name, mongo_uri, db_name, expected, prefetch,
                                                     consumed, last_at, ready, times), daemon=True)
             for ready in readies]
    try:
        for proc in procs:
            proc.start()
        for ready in readies:
            ready.wait(60)
        yield RawPath(name, expected, consumed, last_at, procs, times)
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)  # (gone before its database is dropped: a late insert would make it again)
        with Connection(amqp_uri) as conn:
            channel = conn.channel()
            queue(channel).delete()
            exchange(channel).delete()
        client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000)
        client.drop_database(db_name)
        client.close()


def raw_at_rate(events: list[dict], amqp_uri: str, mongo_uri: str, prefix: str, consumers: int, prefetch: int,
                rate: float, run_id: str, suite_pids: dict[str, int] | None = None) -> dict:
    """The raw path at an even `rate` (the latency phase's): each message's time from publish until its insert
    returned, and the CPU per event of the broker, the database, the consumers and the bench's publisher, with
    the machine's busy share. The p99 target's reference, as the raw ceiling is the throughput's: what the
    plainest path — one publish, one consume, one insert per event, nothing batched — costs and takes at the
    rate the target names, measured on the machine of the hour. With `suite_pids`, also the share of the machine
    those processes took meanwhile (work a suite still does after its phases — sweeps, the case list's batches —,
    which lengthens the raw path's tail; `suite_cpu_share`)."""
    sent: dict[str, float] = {}

    def on_sent(env: dict, t: float) -> None:
        sent[env["event_id"]] = t

    with raw_path(amqp_uri, mongo_uri, prefix, consumers, prefetch, run_id, len(events), timed=True) as path:
        watch = ProcessSampler(path.pids(), infrastructure(amqp_uri, mongo_uri))
        log(f"raw path at {rate:g} events/s: {len(events)} messages → kombu → {consumers} consumer process(es) "
            f"→ insert_one")
        before, suite_before = watch.snapshot(), _cpu_of_pids(suite_pids)
        stats = publish_amqp(events, amqp_uri, rate=rate, on_sent=on_sent, exchange=path.name)
        done = path.wait(120)
        after, suite_after = watch.snapshot(), _cpu_of_pids(suite_pids)
        stored = path.stored_at() if done else {}  # (consumers still waiting for messages send nothing)
    # (an event id published twice is timed from its last publish)
    stored_in = [stored[eid] - t for eid, t in sent.items() if eid in stored]
    out = {"offered_rate_per_s": rate, "achieved_rate_per_s": round(stats.rate, 1), "events": stats.published,
           "consumed": path.consumed.value, "consumers": consumers, "prefetch": prefetch,
           "seconds": round(stats.elapsed, 2), "stored": percentiles(stored_in)}
    if done and stats.published:
        out["cpu"] = window_cpu(before, after, stats.published)
    if suite_pids and after["t"] > before["t"]:
        out["suite_cpu_share"] = round((suite_after - suite_before) / ((after["t"] - before["t"]) * (os.cpu_count() or 1)), 3)
    log(f"raw path at {rate:g} events/s: stored p50 {out['stored']['p50_ms']} ms, p99 {out['stored']['p99_ms']} ms"
        + (f", {out['cpu']['ms_per_event_all']} ms of CPU per event, machine {busy_text(out['cpu'])} busy"
           if "cpu" in out else f" ({out['consumed']} of {out['events']} consumed)"))
    return out


# a raw round during which the suite's own processes used more than this share of the machine measured them
# too: penalty's deadline sweep, every 30 s, re-judged the cases a sustained round made due for 6-16 s after it
# with half the machine, and raw rounds it overlapped read 460-850 messages/s against 1,300-1,700 (2026-12-03)
RAW_SUITE_SHARE_MAX = 0.1


def raw_ceiling_rounds(events: list[dict], amqp_uri: str, mongo_uri: str, prefix: str, consumers: int,
                       prefetch: int, run_id: str, rounds: int, suite_pids: dict[str, int] | None = None,
                       settle: Callable[[], Any] | None = None) -> dict:
    """The raw ceiling measured `rounds` times one after another (each its own queue and database): the
    round with the median rate stands for the machine, with every round's rate and their range beside
    it. One round of a few seconds moved between 900 and 1,700 messages/s on this virtual machine, and
    the ratio target divides by it.

    With `suite_pids`, a round during which those processes used more than RAW_SUITE_SHARE_MAX of the
    machine (work the suite still does, e.g. a sweep) is set aside (`disturbed`, with its rate and that
    share) and measured again after `settle()`, at most `rounds` times in all; a round still disturbed
    after that counts, marked."""
    outs: list[dict] = []
    disturbed: list[dict] = []
    attempt = 0
    while len(outs) < rounds:
        attempt += 1
        before = _cpu_of_pids(suite_pids)
        out = raw_ceiling(events, amqp_uri, mongo_uri, prefix, consumers, prefetch, f"{run_id}-{attempt}")
        if suite_pids and out.get("seconds"):
            share = (_cpu_of_pids(suite_pids) - before) / (out["seconds"] * (os.cpu_count() or 1))
            out["suite_cpu_share"] = round(share, 3)
            if share > RAW_SUITE_SHARE_MAX:
                if len(disturbed) < rounds:
                    disturbed.append(out)
                    log(f"raw ceiling: round set aside, the suite's processes used {share:.0%} of the machine "
                        f"during it ({out['events_per_s']} events/s); measuring again")
                    if settle is not None:
                        settle()
                    continue
                out["disturbed"] = True
        outs.append(out)
    return {**median_round(outs), "rounds": [o["events_per_s"] for o in outs], "round_results": outs,
            "disturbed": [{"events_per_s": o.get("events_per_s"), "suite_cpu_share": o.get("suite_cpu_share")}
                          for o in disturbed]}


def _cpu_of_pids(pids: dict[str, int] | None) -> float:
    """CPU seconds the processes `pids` ({name: pid}) have used (0 without any)."""
    return sum(ProcessSampler._cpu(pid) for pid in (pids or {}).values())


def bracketed(before: dict, after: dict, measured: str) -> dict:
    """A sustained round's raw ceiling from the rounds measured just before it and just after it
    (`raw_ceiling_rounds` of each): the round with the median rate of all of them (`median_round`),
    with every rate and each side's. Back to back on an otherwise idle machine, twelve rounds of
    10,000 messages here read 1,044–1,676 messages/s with no trend (docs/benchmark.md): the machine's
    speed moves within seconds, so rounds on both sides of the sustained round, twice as many, stand
    for the machine during it better than the rounds before it alone."""
    outs = list(before.get("round_results") or ()) + list(after.get("round_results") or ())
    return {**median_round(outs), "rounds": [o["events_per_s"] for o in outs],
            "disturbed": list(before.get("disturbed") or ()) + list(after.get("disturbed") or ()),
            "sides": {"before": before.get("rounds") or [], "after": after.get("rounds") or []},
            "measured": measured, "quiet_wait": before.get("quiet_wait"), "idle_wait": before.get("idle_wait"),
            "after_waits": {"quiet_wait": after.get("quiet_wait"), "idle_wait": after.get("idle_wait")}}


def without_round_results(raw: dict) -> dict:
    """The raw ceiling as the results keep it (each round's rate stays in `rounds`)."""
    return {k: v for k, v in raw.items() if k != "round_results"}


def lower_middle(items: Iterable, key: Callable[[Any], float | None]) -> tuple[Any, list]:
    """(the item whose `key` is the median — of an even count the lower middle one: never a figure
    nothing measured —, the measured items in order of `key`); items whose key is None or 0 are left
    out; (None, []) when none is left."""
    measured = sorted((item for item in items if key(item)), key=key)
    return (measured[(len(measured) - 1) // 2] if measured else None), measured


def median_round(outs: list[dict]) -> dict:
    """The round whose rate is the median (`lower_middle`), with `range` = [lowest, highest] of the
    measured rates."""
    chosen, measured = lower_middle(outs, lambda o: o.get("events_per_s"))
    if chosen is None:
        return dict(outs[-1]) if outs else {}
    return {**chosen, "range": [measured[0]["events_per_s"], measured[-1]["events_per_s"]]}


# the raw ceiling's messages per round unless --raw-events says: those of the sustained round, at most this
# many (≈ 10 s a round here; with --pairs 3 and --raw-rounds 3 nine rounds: ≈ 1.5 min of a default run)
RAW_EVENTS_DEFAULT = 10_000


def median_pair(pairs: list[dict]) -> int | None:
    """The index of the pair (`{"raw": …, "sustained": …}`, both measured) whose ratio sustained / raw
    is the median (`lower_middle`); None when no pair has both rates."""
    ratios = [pair_ratio(p) for p in pairs]
    return lower_middle(range(len(pairs)), ratios.__getitem__)[0]


def pair_ratio(pair: dict) -> float | None:
    """Sustained events/s over the raw ceiling, cut (never rounded up) to 4 decimals: the target is judged
    on this figure, so 620.5 / 1038.4 is 0.5975, not the 0.6 a rounding to two decimals once made of it."""
    ours, raw = (pair.get("sustained") or {}).get("events_per_s"), (pair.get("raw") or {}).get("events_per_s")
    return math.floor(ours * 10000 / raw) / 10000 if ours and raw else None


def raw_ceiling(events: list[dict], amqp_uri: str, mongo_uri: str, prefix: str, consumers: int, prefetch: int,
                run_id: str) -> dict:
    with raw_path(amqp_uri, mongo_uri, prefix, consumers, prefetch, run_id, len(events)) as path:
        log(f"raw ceiling: {len(events)} messages → kombu → {consumers} consumer process(es) → insert_one")
        stats = publish_amqp(events, amqp_uri, exchange=path.name)
        path.wait(600)
        seconds = path.last_at.value - stats.started
        out = {"events": len(events), "consumed": path.consumed.value, "consumers": consumers, "prefetch": prefetch,
               "seconds": round(seconds, 2), "events_per_s": round(path.consumed.value / seconds, 1) if seconds > 0 else None,
               "publish_rate_per_s": round(stats.rate, 1)}
        log(f"raw ceiling: {out['events_per_s']} events/s (publisher alone {out['publish_rate_per_s']}/s)")
        return out


def drop_databases(mongo_uri: str, prefix: str) -> None:
    import pymongo

    client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=5000)
    try:
        for name in client.list_database_names():
            if name.startswith(prefix):
                client.drop_database(name)
    finally:
        client.close()


def conditions(results: dict, load_before: list[float] | None, load_after: list[float] | None) -> dict:
    """The conditions every figure was taken under (printed on each verdict line, kept in the JSON)."""
    cpu = results.get("cpu") or {}
    others = cpu.get("others_cpu_share")
    return {"cores": results["machine"].get("nproc"), "load_before": load_before, "load_after": load_after,
            "others_cpu_share": others, "others_top": cpu.get("others_top", []),
            "clean": is_clean(others, TARGETS)}


DUE_CAUSES = {"officer": "人员", "item": "事项", "party": "当事人决定", "projection_read": "判定时所读数据已变"}


def print_summary(results: dict) -> None:
    m, s, lat = results["machine"], results["sustained"], results["latency"]
    print()
    print("Zhifa 基准测试结果")
    print(f"  机器        {m['nproc']} 核 · {m['memory_mb']} MB 内存 · {m['cpu_model']} · Linux {m['kernel']}")
    print(f"  进程        {', '.join(results['suite'].get('processes', []))}（按服务声明启动或找到）")
    print(f"  负载去向    {', '.join(results['suite']['services'])}"
          + (f"（未运行、未计入：{', '.join(results['suite']['missing'])}）" if results['suite']['missing'] else ""))
    print(f"  负载        {results['workload']['counties']} 个模拟县，{results['workload']['by_service']}")
    print(f"  持续吞吐    {s['events_per_s']} 条/秒（{s['handled']}/{s['events']} 条处理入库，{s['seconds']} 秒"
          f"{'' if s['complete'] else '，未处理完'}；发布端 {s['publish_rate_per_s']} 条/秒；"
          f"监督发现 {s['findings_raised']} 条）")
    paired = results.get("pairs")
    if paired:
        bracket = bracketed_pairs(paired)
        print(f"  交替测量    {len(paired['pairs'])} 组（"
              + ("原始上限与持续吞吐交替，最后再测一次原始上限；每组的原始上限取其持续吞吐前后两次测量各轮的中位数"
                 if bracket else "每组先测原始上限，再测持续吞吐")
              + f"），取比值居中的第 {paired['chosen']} 组（本节各行与原始上限、比值均为该组）：")
        for i, p in enumerate(paired["pairs"], 1):
            sides = (f"（前 {' / '.join(f'{r:g}' for r in p['raw_before'])}，后 {' / '.join(f'{r:g}' for r in p['raw_after'])}）"
                     if p.get("raw_after") and p.get("raw_before") else "")
            print(f"              第 {i} 组  原始上限 {p['raw_events_per_s']} 条/秒{sides} · 持续吞吐 {p['events_per_s']} 条/秒"
                  f"{'' if p['complete'] else '（未处理完）'} · 比值 {p['ratio']}"
                  + ("" if p["ms_per_event_all"] is None else f" · 每条事件 CPU {p['ms_per_event_all']} ms")
                  + ("" if p.get("sweep_judged_per_event") is None else f" · 每条事件重判 {p['sweep_judged_per_event']:g} 件"))
    if s.get("database_commands_per_event"):
        print("  数据库命令  持续吞吐阶段每条事件："
              + " · ".join(f"{name} {n:g}" for name, n in s["database_commands_per_event"].items())
              + "（整个数据库服务器的命令数，含其他客户端）")
    per = s.get("db_commands_by_collection")
    if per:
        print(f"  命令去向    各服务每条事件 {per['total_per_event']:g} 条数据库命令（"
              + " · ".join(f"{k} {v:g}" for k, v in per["by_service"].items()) + "）")
        if per.get("ops_by_service"):
            print(f"              命令所含操作（批量写的每条语句、插入的每个文档）每条事件 {per['ops_per_event']:g} 个（"
                  + " · ".join(f"{k} {v:g}" for k, v in per["ops_by_service"].items()) + "）；按操作数前 10 位（服务 × 集合）：")
        for row in per["top"]:
            print(f"              {row['service']:<13} {row['collection']:<22} {row.get('ops_per_event', 0):>7.3f} 操作"
                  f" · {row['commands_per_event']:.3f} 条命令/事件"
                  f" · 等待 {row['wait_ms_per_event']:.2f} ms/事件 · "
                  + " ".join(f"{c} {n:g}" for c, n in row["by_command"].items()))
    due = s.get("due_work")
    if due:
        print(f"  到期重判    每条事件：截止期扫描重新判定 {due['sweep_judged_per_event']:g} 件；因所读数据变化标记到期 "
              f"{due['marked_due_per_event']:g} 件（" + (" · ".join(f"{DUE_CAUSES.get(k, k)} {v:g}" for k, v in
                                                         due["marked_due_by_cause"].items()) or "无") + "）"
              + (f"；变更记录已丢失条目、须重新读取所读数据核对的 {due['checked_unknown_per_event']:g} 件"
                 if due.get("checked_unknown_per_event") else ""))
    if s.get("workers"):
        print(f"  工作单元    持续吞吐阶段{workers_text(s['workers'])}")
    wc = s.get("cpu")
    if wc:
        print(f"  阶段 CPU    持续吞吐阶段（{wc['window_s']} 秒，含发布）整机忙 {busy_text(wc)}（{wc['cores']} 核）；"
              f"每条事件 CPU {wc['ms_per_event_all']} ms：{processes_text(wc, 7)}")
    if lat.get("skipped"):
        print(f"  延迟        未测量（{lat['skipped']}：没有可发布的事件）")
    else:
        print_latency(lat)
    raw_rate = results.get("raw_at_rate")
    if raw_rate:
        print(raw_at_rate_text(raw_rate, lat))
    half = results.get("latency_at_half_capacity")
    if half:
        hv = half["fact_visible"]
        print(f"  延迟（半负荷，参考，非目标速率）以 {half['offered_rate_per_s']:g} 条/秒（持续吞吐的一半）发布 {half['seconds']} 秒："
              f"入库可见 p50 {hv['p50_ms']} / p95 {hv['p95_ms']} / p99 {hv['p99_ms']} ms（{hv['samples']} 个样本）"
              + latency_cpu_text(half))
    if results.get("knee"):
        from services.simulator.bench_knee import summary_lines

        head, *points = summary_lines(results["knee"])
        print(f"  延迟拐点    {head}")
        for line in points:
            print(f"              {line}")
    print_raw_and_rest(results)


def print_latency(lat: dict) -> None:
    fv, oe = lat["fact_visible"], lat["output_event"]
    print(f"  延迟        以 {lat['offered_rate_per_s']:.0f} 条/秒（实际 {lat['achieved_rate_per_s']}）发布 {lat['seconds']} 秒"
          f"{'（已饱和' + ('，提前停止加压' if lat.get('note') else '') + '）' if lat.get('saturated') else ''}："
          f"入库可见 p50 {fv['p50_ms']} / p95 {fv['p95_ms']} / p99 {fv['p99_ms']} ms（{fv['samples']} 个样本）；"
          f"输出事件 p99 {oe['p99_ms']} ms" + latency_cpu_text(lat))
    kinds = fv.get("by_collection") or {}
    if len(kinds) > 1:
        print("              按聚合：" + " · ".join(f"{AGGREGATE_NAMES.get(name, name)} p50 {k['p50_ms']} / p99 {k['p99_ms']} ms"
                                                    f"（{k['samples']} 个）" for name, k in kinds.items() if k["samples"]))
    halves = fv.get("by_half")
    if halves and halves["first"]["samples"] and halves["second"]["samples"]:
        print("              按发布时段：" + " · ".join(
            f"{label} {halves['half_s']:g} 秒发布的 p50 {h['p50_ms']} / p99 {h['p99_ms']} ms（{h['samples']} 个）"
            for label, h in (("前", halves["first"]), ("后", halves["second"]))))
    if lat.get("workers"):
        print(f"              工作单元{workers_text(lat['workers'])}")


# the aggregates' collections the latency sampler reads, as the summary names them
AGGREGATE_NAMES = {"cases": "案件", "officers": "执法人员", "agencies": "执法主体", "items": "执法事项"}


def workers_text(workers: dict, top: int = 4) -> str:
    """The entrypoints whose workers took the most time in a phase (`workers_between`), for the summary: per
    1,000 events how many ran, their mean size (a batch handler's) and mean time."""
    return "（耗时最多的前 {}，每千条事件）：".format(min(top, len(workers))) + " · ".join(
        f"{key} {w['per_1000_events']:g} 次"
        + (f"（每批 {w['mean_messages']:g} 条" if "mean_messages" in w else "（")
        + (("，" if "mean_messages" in w else "") + f"平均 {w['mean_ms']:g} ms）" if "mean_ms" in w else "）")
        for key, w in list(workers.items())[:top])


def raw_at_rate_text(raw: dict, lat: dict) -> str:
    """The summary's line for the raw path at the latency phase's rate (`raw_at_rate`), beside the suite's
    CPU per event at that rate when the latency phase has it."""
    st, wc = raw["stored"], raw.get("cpu") or {}
    line = (f"  原始路径    同速率参照（非目标判定）：以 {raw['offered_rate_per_s']:g} 条/秒（实际 {raw['achieved_rate_per_s']}）"
            f"发布 {raw['seconds']} 秒，kombu → {raw['consumers']} 个消费进程 → 每条 insert_one：入库 p50 {st['p50_ms']} / "
            f"p99 {st['p99_ms']} ms（{st['samples']} 条）")
    if wc.get("ms_per_event_all") is None:
        return line + f"；{raw['consumed']} / {raw['events']} 条已消费，CPU 未计"
    line += f"；每条事件 CPU {wc['ms_per_event_all']} ms，整机忙 {busy_text(wc)}（{processes_text(wc, 3)}）"
    if raw.get("suite_cpu_share") is not None:
        line += f"；其间套件进程占整机 {raw['suite_cpu_share']:.0%}"
    suite = (lat.get("cpu") or {}).get("ms_per_event_all")
    if suite and lat.get("offered_rate_per_s") == raw["offered_rate_per_s"]:
        line += f"；套件同速率每条事件 {suite} ms，为原始路径的 {suite / wc['ms_per_event_all']:.2f} 倍"
    return line


def latency_cpu_text(lat: dict) -> str:
    """The CPU per event at a latency phase's rate (publishing and draining), for the summary; empty when the
    phase has none (a backlog left undrained, or no process sampler)."""
    wc = lat.get("cpu")
    if not wc or wc.get("ms_per_event_all") is None:
        return ""
    return (f"；此速率下每条事件 CPU {wc['ms_per_event_all']} ms（发布起至最后一个样本入库，{wc['window_s']} 秒，"
            f"整机忙 {busy_text(wc)}：{processes_text(wc, 4)}）")


def busy_text(wc: dict) -> str:
    """A phase's busy share of the whole machine (`window_cpu`), as printed; ? when unknown."""
    busy = wc.get("machine_busy_share")
    return "?" if busy is None else f"{busy:.0%}"


def processes_text(wc: dict, top: int) -> str:
    """The `top` busiest processes of a phase's window (`window_cpu`): CPU per event and cores each."""
    return " · ".join(f"{name} {p['ms_per_event']:.2f} ms（{p['cores']:.2f} 核）"
                      for name, p in list(wc["processes"].items())[:top])


def print_raw_and_rest(results: dict) -> None:
    m, raw = results["machine"], results["raw_ceiling"]
    def waits(quiet: dict | None, idle: dict | None) -> str:
        return "" if quiet is None else (f"等待服务空闲 {quiet['waited_s']} 秒" + ("" if quiet["quiet"] else "，未确认空闲")
                                         + ("" if idle is None else f"，再等待整机空闲 {idle['waited_s']} 秒"
                                            + ("" if idle["idle"] else "（未达到）")))

    before = ("先于持续吞吐阶段测量" if not results.get("pairs") else
              f"在第 {results['pairs']['chosen']} 组持续吞吐{'前后' if raw.get('sides') else '之前'}测量")
    after = raw.get("after_waits") or {}
    when = "" if raw.get("quiet_wait") is None else (
        f"；{before}，" + ("前：" if after else "") + waits(raw.get("quiet_wait"), raw.get("idle_wait"))
        + (f"；后：{waits(after.get('quiet_wait'), after.get('idle_wait'))}" if after.get("quiet_wait") else ""))
    rounds = raw.get("rounds") or []
    spread = (f"，{len(rounds)} 轮取中位数，范围 {raw['range'][0]}–{raw['range'][1]}" if len(rounds) > 1 and raw.get("range")
              else "")
    aside = raw.get("disturbed") or []
    if aside:
        spread += (f"；另有 {len(aside)} 轮因套件自身进程占整机超过 {RAW_SUITE_SHARE_MAX:.0%} 而重测（"
                   + " / ".join(f"{d['events_per_s']} 条/秒，占 {d['suite_cpu_share']:.0%}" for d in aside) + "）")
    print(f"  原始上限    {raw['events_per_s']} 条/秒（kombu 发布→消费→insert_one，{raw['consumers']} 个消费进程{spread}{when}）；"
          f"比值 {results['ratio_to_raw']}")
    for name, mem in results["memory"].items():
        print(f"  内存        {name:<10} 峰值 RSS {mem['peak_rss_mb']} MB（VmHWM {mem['vm_hwm_mb']} MB）")
    cpu = results.get("cpu", {}).get("processes", {})
    if cpu:
        busy = sorted(cpu.items(), key=lambda kv: -kv[1]["cpu_s"])
        print(f"  CPU         测量期间 {results['cpu']['window_s']} 秒内各进程 CPU 秒（占整机比例）："
              + "，".join(f"{name} {v['cpu_s']}（{v['share_of_machine']:.0%}）" for name, v in busy))
    c = results["conditions"]
    db = m.get("database") or {}
    print(f"  条件        负载 {c['load_before']} → {c['load_after']}；测量期间其他进程占整机 "
          f"{'未知' if c['others_cpu_share'] is None else format(c['others_cpu_share'], '.0%')}"
          + (("（" + "，".join(f"{o['process'][:50]} {o['cpu_s']} 秒" for o in c["others_top"][:3]) + "）")
             if c["others_top"] else ""))
    build = f"（{m['python_executable']}）" if m.get("python_executable") else ""
    print(f"  软件        Python {m['python']}{build} · {db.get('server')} {db.get('ferretdb') or db.get('wire_version')}"
          f"{' · 后端 ' + str(db.get('backend')) if db.get('ferretdb') else ''} · 提交 {m.get('git_commit')}")
    for note in results.get("notes", []):
        print(f"  说明        {note}")
    for verdict in results["targets"]:
        print(f"  目标        {verdict['line']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.simulator.bench", description="Zhifa 基准测试")
    parser.add_argument("--events", type=int, default=30000, help="持续吞吐阶段的事件数")
    parser.add_argument("--max-seconds", type=float, default=300,
                        help="持续吞吐阶段最长等待秒数（超时按已入库数计算速率并注明未完成）")
    parser.add_argument("--rate", type=float, default=1000, help="延迟阶段的发布速率（条/秒）")
    parser.add_argument("--duration", type=float, default=20, help="延迟阶段时长（秒）")
    parser.add_argument("--sample", type=int, default=50, help="延迟阶段每多少条事件取一个入库可见样本")
    parser.add_argument("--saturated-after", type=float, default=10,
                        help="样本超过多少秒仍未入库即判定饱和、停止加压")
    parser.add_argument("--raw-events", type=int,
                        help=f"原始上限每轮的消息数（默认同 --events，至多 {RAW_EVENTS_DEFAULT}）")
    parser.add_argument("--raw-idle-below", type=share, default=0.2,
                        help="每轮原始上限前等待整机忙碌低于此比例（持续 2 秒，至多 60 秒）：服务计数停止后仍在进行的后台工作不占用原始上限的 CPU")
    parser.add_argument("--raw-consumers", type=at_least_one, default=None,
                        help="原始上限阶段的消费进程数（默认：与套件中进程最多的服务的进程数相同，如 penalty 的 2 个分区）")
    parser.add_argument("--raw-prefetch", type=int, default=100)
    parser.add_argument("--raw-at-rate", action=argparse.BooleanOptionalAction, default=True,
                        help="延迟阶段之后以同一速率测一次原始路径（kombu→消费进程→insert_one，不批量）："
                             "入库 p50/p99、每条事件 CPU 与整机忙碌比例，作为 p99 目标的参照（不是判定）")
    parser.add_argument("--raw-rounds", type=at_least_one, default=3,
                        help="原始上限测量几轮（取中位数，并给出范围）")
    parser.add_argument("--pairs", type=at_least_one, default=3,
                        help="原始上限与持续吞吐交替测量几组（每组各用 --events 条新事件；多于 1 组时最后再测一次原始上限，每组的原始上限取其持续吞吐前后两次测量各轮的中位数），取比值居中的一组代表本次结果")
    parser.add_argument("--start-suite", choices=("auto", "yes", "no"), default="auto",
                        help="auto：有运行中的套件就用它，否则自行启动（结束后停止）")
    parser.add_argument("--stall", type=float, default=60, help="入库计数停滞多少秒判定为未完成")
    parser.add_argument("--seed", type=int, default=None, help="工作负载种子（默认按时间取，避免与既有数据重复）")
    parser.add_argument("--keep-data", action="store_true", help="保留自行启动的套件写入的数据库")
    parser.add_argument("--keep-run-logs", type=integer_at_least(0), default=RUN_LOGS_KEPT, metavar="N",
                        help=f"只保留最近 N 次运行的服务进程日志目录（.run/bench/<运行编号>/，含本次；默认 {RUN_LOGS_KEPT}，0 为全部保留）")
    parser.add_argument("--strict", action="store_true", help="任一目标未达标时以退出码 1 结束")
    parser.add_argument("--out", default=str(ROOT / ".run" / "bench" / "latest.json"), help="结果 JSON 文件")
    parser.add_argument("--replicas", action="append", metavar="SERVICE=N",
                        help="自行启动套件时某服务的进程数，可重复，如 --replicas penalty=2：分区服务（声明 partition_key）为分区数，其余为竞争消费者")
    parser.add_argument("--knee", action="store_true",
                        help="追加延迟拐点探测：主延迟阶段未满足 p99 目标时，以更低的发布速率做几次短延迟阶段，"
                             "找出满足 p99 目标的最高速率（参考值，非目标判定；services/simulator/bench_knee.py）")
    parser.add_argument("--knee-probes", type=at_least_one, default=5, help="延迟拐点最多探测几次")
    parser.add_argument("--knee-seconds", type=probe_seconds, default=15, help="每次探测的发布时长（秒）")
    parser.add_argument("--knee-p99-ms", type=positive_ms, default=TARGETS.p99_ms,
                        help=f"延迟拐点所找的 p99 上限（毫秒，默认为目标的 {TARGETS.p99_ms:g}）：如按 500 ms 规划容量")
    parser.add_argument("--replay", action="store_true",
                        help="追加重放阶段：装载一个县的全年历史，再按 as_of 重放（services/simulator/bench_replay.py）")
    parser.add_argument("--replay-load", choices=("direct", "ingress"), default="direct",
                        help="全年历史的装载方式：direct 直接经各服务的入库路径（不计时，总能装完全年）；"
                             "ingress 经入口发布（受 --max-seconds 限制，可能只装载一部分）")
    parser.add_argument("--replay-chunk", type=int, default=500, help="direct 装载时每批交给 apply_batch 的事件数")
    args = parser.parse_args(argv)
    replicas = parse_replicas(args.replicas)
    # stopped from outside (a CI timeout, `kill`): leave through the `finally`s like Ctrl-C does, so the
    # suite processes this run started are stopped and its databases and vhost removed (not orphaned)
    exit_on_sigterm()

    amqp_uri = os.environ.get("AMQP_URI", DEFAULT_AMQP_URI)
    mongo_uri = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
    web = os.environ.get("WEB_SERVER_ADDRESS", "127.0.0.1:8000")
    mgmt = os.environ.get("RABBIT_MGMT_URI")
    run_id = uuid.uuid4().hex[:6]
    seed = args.seed if args.seed is not None else int(time.time())
    load_before = load_average()
    results: dict[str, Any] = {"machine": machine(), "run_id": run_id, "seed": seed, "notes": [],
                               "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "args": vars(args), "targets_config": TARGETS.as_dict()}
    results["machine"]["database"] = database_server(mongo_uri)
    log(f"machine: {results['machine']}")

    use_running = args.start_suite == "no" or (args.start_suite == "auto" and healthy(f"http://{web}/health"))
    broker, vhost = (Broker(mgmt) if mgmt else None), None
    # what earlier runs killed before their cleanup left on this server (services/simulator/bench_leftovers.py)
    for line in bench_leftovers.clean(
            mongo_uri, lambda p: drop_databases(mongo_uri, p), broker.delete_vhost if broker is not None else None,
            processes=lambda record: [pid for _, pid in suite_process_pids(record["amqp_uri"], record["prefix"])]):
        log(f"leftovers: {line}")
    if use_running:
        prefix = os.environ.get("DB_PREFIX", "zhifa_")
        results["notes"].append("测量的是运行中的套件；基准数据（带 tag 的编号）留在其数据库中")
        # (only the raw path's scratch databases are this run's to remove)
        record = bench_leftovers.register(run_id, prefix=f"{prefix}bench_raw_{run_id}", mongo_uri=mongo_uri)
    else:
        prefix = f"zhifa_bench{run_id}_"
        web = f"127.0.0.1:{free_port()}"
        if broker is not None:  # a private vhost: nothing the bench leaves behind can reach another suite
            vhost = f"zhifa-bench-{run_id}"
        suite_uri = with_vhost(amqp_uri, vhost) if vhost is not None else amqp_uri  # (what its processes get)
        record = bench_leftovers.register(run_id, prefix=prefix, mongo_uri=mongo_uri, vhost=vhost, amqp_uri=suite_uri)
        if vhost is not None:
            broker.create_vhost(vhost, urllib.parse.urlsplit(amqp_uri).username or "guest")
        amqp_uri = suite_uri
    if not use_running and args.keep_run_logs > 0:
        removed = prune_run_logs(ROOT / ".run" / "bench", args.keep_run_logs - 1)
        if removed:
            log(f"removed the service logs of {len(removed)} earlier runs (--keep-run-logs {args.keep_run_logs})")
    try:
        with Suite(amqp_uri, mongo_uri, prefix, web, "no" if use_running else "yes",
                   ROOT / ".run" / "bench" / run_id, replicas) as suite:
            services = suite.services
            if not services:
                raise SystemExit("bench: none of personnel/registry/penalty is running")
            latency_count = int(args.rate * args.duration)
            # the knee's probes run below the main phase's rate: at most this many events, after the latency phases'
            knee_budget = int(args.knee_probes * args.knee_seconds * args.rate) if args.knee else 0
            events, info = workload(args.pairs * args.events + 2 * latency_count + knee_budget, services, seed, run_id)
            results["suite"] = {"services": services, "missing": [s for s in SERVICES if s not in services],
                                "processes": sorted(suite.pids()),
                                "started_by_bench": bool(suite.started), "db_prefix": prefix,
                                "vhost": vhost, "mongo_uri": mongo_uri}
            results["workload"] = info
            overridden = settings_from_environment() if suite.started else {}
            results["suite"]["settings_from_environment"] = overridden
            if overridden:
                results["notes"].append("服务进程继承的环境变量设置（非默认值）："
                                        + "，".join(f"{k}={v}" for k, v in overridden.items()))
            scaled = {name: n for name, n in replicas.items() if n > 1}
            if suite.started:
                counts = results["suite"]["processes"] = per_service(suite.started)
                several = {name: n for name, n in counts.items() if n > 1}
                if several:
                    results["notes"].append("，".join(
                        f"{name} {n} 个进程（{'分区：各自处理归属于自己的案件' if name in partitioned() else '竞争消费者'}）"
                        for name, n in several.items()) + "；其余服务各 1 个进程（PARTITIONS / --replicas）")
            elif scaled:
                results["notes"].append("--replicas 未生效：测量的是运行中的套件，进程数以其实际为准")
            rounds = [events[i * args.events:(i + 1) * args.events] for i in range(args.pairs)]
            rest = args.pairs * args.events
            second = events[rest:rest + latency_count]
            spent = rest + 2 * latency_count  # the events the phases before the knee's may take

            # the raw path gets the suite's parallelism: as many consumer processes as its widest service has
            # processes (penalty's partitions), so the ceiling is not one process against the suite's several
            from services.launcher import processes

            raw_consumers = args.raw_consumers or widest(suite.started or processes())

            def raw_round(i: int) -> dict:
                # the raw ceiling before its sustained round, on a quiet pipeline: a backlog still
                # draining would take its CPU
                quiet = wait_until_flat(HandledCounter(suite.metrics_urls()), timeout=900)
                log(f"raw ceiling: services quiet after {quiet['waited_s']}s"
                    + ("" if quiet["quiet"] else " (not flat: counters " + ("unreadable)" if quiet["quiet"] is None else "still moving)")))
                def settle() -> dict:
                    idle = wait_until_idle(machine_busy(), args.raw_idle_below)
                    log(f"raw ceiling: machine below {args.raw_idle_below:.0%} busy after {idle['waited_s']}s"
                        + ("" if idle["idle"] else " (not reached)" if idle["idle"] is False else " (unknown)"))
                    return idle

                idle = settle()
                raw_events = rounds[min(i, len(rounds) - 1)][:args.raw_events or RAW_EVENTS_DEFAULT]
                tag = run_id if args.pairs == 1 else f"{run_id}p{i + 1}"
                return {**raw_ceiling_rounds(raw_events, amqp_uri, mongo_uri, prefix, raw_consumers,
                                             args.raw_prefetch, tag, args.raw_rounds, suite.pids(), settle),
                        "measured": ("before the sustained phase" if args.pairs == 1 else f"before sustained round {i + 1}"
                                     if i < args.pairs else f"after sustained round {i}"),
                        "quiet_wait": quiet, "idle_wait": idle}

            sets = [raw_round(0)]  # the raw rounds before each sustained round (and, of several, after the last)
            pairs = [{"raw": sets[0]}]
            store = Store(mongo_uri, prefix, services)
            output = OutputEvents()
            sampler = ProcessSampler(suite.pids(), infrastructure(amqp_uri, mongo_uri))
            sampler.start()
            try:
                with RawTap(amqp_uri, services, output):
                    handled = HandledCounter(suite.metrics_urls(), suite.all_metrics_urls())
                    for i in range(args.pairs):
                        if i:
                            with sampler.paused():
                                sets.append(raw_round(i))
                            pairs.append({"raw": sets[i]})
                        if args.pairs > 1:
                            log(f"pair {i + 1}/{args.pairs}: raw ceiling before it {sets[i].get('events_per_s')} events/s")
                        pairs[i]["sustained"] = sustained(rounds[i], amqp_uri, store, output, args.stall,
                                                          args.max_seconds, handled, sampler)
                        if not pairs[i]["sustained"]["complete"]:
                            results["notes"].append(settle_backlog(amqp_uri, broker, vhost, use_running, handled,
                                                                   pairs[i]["sustained"]))
                    if args.pairs > 1:  # the raw rounds after the last sustained round: every round is bracketed
                        with sampler.paused():
                            sets.append(raw_round(args.pairs))
                        for i, pair in enumerate(pairs):
                            pair["raw"] = bracketed(sets[i], sets[i + 1], f"before and after sustained round {i + 1}")
                            log(f"pair {i + 1}/{args.pairs}: raw ceiling {pair['raw'].get('events_per_s')} events/s "
                                f"(median of {len(pair['raw']['rounds'])} rounds before and after it)")
                    for pair in pairs:
                        pair["raw"] = without_round_results(pair["raw"])
                    chosen = median_pair(pairs)
                    chosen = len(pairs) - 1 if chosen is None else chosen
                    results["raw_ceiling"], results["sustained"] = pairs[chosen]["raw"], pairs[chosen]["sustained"]
                    if args.pairs > 1:
                        results["pairs"] = {"chosen": chosen + 1, "by": "median ratio", "pairs": [
                            {"raw_events_per_s": p["raw"].get("events_per_s"), "raw_range": p["raw"].get("range"),
                             "raw_set_aside": [d.get("events_per_s") for d in p["raw"].get("disturbed") or ()],
                             "raw_before": (p["raw"].get("sides") or {}).get("before"),
                             "raw_after": (p["raw"].get("sides") or {}).get("after"),
                             "events_per_s": p["sustained"].get("events_per_s"), "complete": p["sustained"].get("complete"),
                             "seconds": p["sustained"].get("seconds"),
                             "ms_per_event_all": (p["sustained"].get("cpu") or {}).get("ms_per_event_all"),
                             "sweep_judged_per_event": (p["sustained"].get("due_work") or {}).get("sweep_judged_per_event"),
                             "marked_due_per_event": (p["sustained"].get("due_work") or {}).get("marked_due_per_event"),
                             "db_ops_per_event": (p["sustained"].get("db_commands_by_collection") or {}).get("ops_per_event"),
                             "ratio": pair_ratio(p)} for p in pairs]}
                    if second:
                        results["latency"] = latency(second, amqp_uri, store, output, args.rate, args.sample,
                                                     services, wait=30, saturated_after=args.saturated_after,
                                                     procs=sampler, metric_urls=handled.every)
                    else:  # (--rate or --duration 0: nothing to offer)
                        results["latency"] = {"skipped": f"--rate {args.rate:g} --duration {args.duration:g}"}
                        log("latency: skipped (no events to offer at this rate and duration)")
                    capacity = results["sustained"]["events_per_s"] or 0
                    if results["latency"].get("saturated") and not use_running and capacity > 2:
                        # the offered rate only measured queueing: show the pipeline's own latency too
                        settle_backlog(amqp_uri, broker, vhost, use_running, handled, results["sustained"])
                        half = max(1.0, round(capacity / 2, 1))
                        third = events[rest + latency_count:][:int(half * args.duration)] or second
                        if third is not second:  # (the knee's probes take the events after these)
                            spent = max(spent, rest + latency_count + len(third))
                        results["latency_at_half_capacity"] = latency(
                            third, amqp_uri, store, output, half, max(1, min(args.sample, int(half) // 5)), services,
                            wait=30, saturated_after=args.saturated_after, procs=sampler,
                            metric_urls=handled.every)
                    if second and args.raw_at_rate:
                        # the p99 target's reference: the raw path at the latency phase's rate, on a settled
                        # suite and an idle machine, left out of the suite's CPU totals
                        with sampler.paused():
                            if args.keep_data:  # (what is kept should hold the services' work: nothing purged)
                                wait_until_flat(handled, timeout=900)
                            else:
                                settle_backlog(amqp_uri, broker, vhost, use_running, handled, results["sustained"])
                            idle = wait_until_idle(machine_busy(), args.raw_idle_below)
                            results["raw_at_rate"] = {
                                **raw_at_rate(second, amqp_uri, mongo_uri, prefix, raw_consumers, args.raw_prefetch,
                                              args.rate, f"{run_id}r", suite.pids()), "idle_wait": idle}
                    if args.knee and results["latency"].get("skipped"):
                        results["notes"].append("--knee 未执行：没有主延迟阶段（--rate 或 --duration 为 0）")
                    elif args.knee:
                        results["knee"] = knee(events[spent:], results["latency"], args, amqp_uri,
                                               store, output, services, sampler, handled,
                                               lambda: settle_backlog(amqp_uri, broker, vhost, use_running, handled,
                                                                      results["sustained"]))
                    results["output_events"] = dict(output.counts)
            finally:
                results["memory"], results["cpu"] = sampler.stop()
                store.close()
            if args.keep_data and not use_running:
                # the databases kept should hold what the services do with the events: what they relay
                # to each other (findings to coordination's inbox…) is still queued when the phases end,
                # and stopping the suite and deleting its vhost would lose it
                names = broker.queues(vhost) if broker is not None and vhost else suite_queues()
                kept = drain(lambda: ready_messages(amqp_uri, names), every_message_handled(suite.all_metrics_urls()),
                             timeout=args.max_seconds)
                results["kept_data"] = {"db_prefix": prefix, **kept}
                results["notes"].append(f"--keep-data：停止服务前等待队列中的消息处理完，{kept['waited_s']} 秒"
                                        + ("" if kept["drained"] else f"，超时，仍有 {kept['left']} 条未处理"))
                log(f"keep-data: queues {'drained' if kept['drained'] else 'not drained'} after {kept['waited_s']}s")
            if args.replay:  # after the CPU window above; the suite still runs: the county is loaded through it
                from services.simulator import bench_replay

                handled = HandledCounter(suite.metrics_urls())
                settle_backlog(amqp_uri, broker, vhost, use_running, handled, results["sustained"])
                results["notes"].append("重放阶段前已清除（自行启动的套件）或等待处理完（运行中的套件）延迟阶段留下的积压")
                replay_store = Store(mongo_uri, prefix, services)
                if args.replay_load == "direct":  # untimed; waits for the suite after each service's facts
                    watched = [url[:-len("/health")] + "/metrics" for url in suite.health.values()]
                    load = bench_replay.direct_loader(mongo_uri, prefix, amqp_uri, services,
                                                      lambda: bench_replay.quiet(amqp_uri, watched), args.replay_chunk)
                else:
                    def load(evs):
                        return sustained(evs, amqp_uri, replay_store, OutputEvents(), args.stall, args.max_seconds,
                                         handled)
                try:
                    results["replay"] = bench_replay.phase(
                        load,
                        mongo_uri, prefix, services, seed, run_id, {**suite.pids(), **infrastructure(amqp_uri, mongo_uri)},
                        settle=lambda loaded: settle_backlog(amqp_uri, broker, vhost, use_running, handled, loaded))
                finally:
                    replay_store.close()
    finally:
        if not use_running:
            if not args.keep_data:
                drop_databases(mongo_uri, prefix)
            if vhost is not None:
                broker.delete_vhost(vhost)
            elif "suite" in results:
                purge_queues(amqp_uri, suite_queues())
        # (reached only when the cleanup above went through: otherwise the record stays for the next run)
        if args.keep_data and not use_running:
            bench_leftovers.keep(record)
        else:
            bench_leftovers.release(record)
    results["ratio_to_raw"] = pair_ratio({"raw": results["raw_ceiling"], "sustained": results["sustained"]})
    results["conditions"] = conditions(results, load_before, load_average())
    verdicts = judge_verdicts(results, TARGETS)
    results["targets"] = [v.as_dict() for v in verdicts]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, results)
    print_summary(results)
    if "replay" in results:
        from services.simulator.bench_replay import summary_line

        print(f"  重放        {summary_line(results['replay'])}")
    print(f"\n结果已写入 {Path(args.out).resolve()}")
    # a benchmark reports; it does not fail the build on a missed target (set --strict for that)
    return 0 if not args.strict or all_met(verdicts) else 1


def wait_until_flat(read: Callable[[], Any], timeout: float, quiet: float = 3.0, interval: float = 1.0,
                    clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                    until: Callable[[Any], bool] = lambda value: True) -> dict:
    """Wait until the services' progress counter (`read`, e.g. HandledCounter) stays unchanged for
    `quiet` seconds with a value `until` accepts, at most `timeout`: {"waited_s", "quiet": True, False
    (timed out) or None (the counters could not be read: nothing known)}."""
    started = clock()
    last, still_since = read(), started
    while clock() - started < timeout:
        sleep(interval)
        now = read()
        if now != last:
            last, still_since = now, clock()
        elif clock() - still_since >= quiet and until(now):
            return {"waited_s": round(clock() - started, 1), "quiet": None if now is None else True}
    return {"waited_s": round(clock() - started, 1), "quiet": False}


def machine_busy(clock: Callable[[], float] = time.monotonic) -> Callable[[], float | None]:
    """A reader of the machine's busy share (0–1 of all cores: `machine_busy_seconds` over the wall time)
    since its previous call (None when no time passed)."""
    last = [clock(), machine_busy_seconds()]

    def read() -> float | None:
        now, busy = clock(), machine_busy_seconds()
        (then, before), last[:] = last, [now, busy]
        if now <= then:
            return None
        return min(1.0, max(0.0, (busy - before) / ((now - then) * (os.cpu_count() or 1))))  # (clock ticks: 10 ms)

    return read


def number_in(low: float, high: float) -> Callable[[str], float]:
    """An argument type: a number > `low` and ≤ `high` (finite: with `high` infinite, any finite number above
    `low`), refused with a message in Chinese (argparse names the option)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"应为数字，收到 {text!r}") from None
        if not (low < value <= high and math.isfinite(value)):  # (NaN fails too)
            raise argparse.ArgumentTypeError(f"应大于 {low:g}" + ("" if math.isinf(high) else f" 且不大于 {high:g}")
                                             + f"，收到 {text}")
        return value
    return parse


share = number_in(0, 1)                # a share of the machine
probe_seconds = number_in(0, 600)      # a knee probe's duration
positive_ms = number_in(0, math.inf)   # a latency bound


def wait_until_idle(busy: Callable[[], float | None], below: float, timeout: float = 60, quiet: float = 2.0,
                    interval: float = 0.5, clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], None] = time.sleep) -> dict:
    """Wait until the machine stays less than `below` busy for `quiet` seconds (work the services do
    after their counters went flat — sweeps, the case list's batches, SQLite's checkpoints — would
    otherwise take CPU from a raw round), at most `timeout`: {"waited_s", "idle": True | False | None
    (unknown), "busy"}."""
    started, calm_since, value = clock(), None, None
    busy()
    while clock() - started < timeout:
        sleep(interval)
        value = busy()
        if value is None:
            return {"waited_s": round(clock() - started, 1), "idle": None, "busy": None}
        if value >= below:
            calm_since = None
        elif calm_since is None:
            calm_since = clock()
        elif clock() - calm_since >= quiet:
            return {"waited_s": round(clock() - started, 1), "idle": True, "busy": round(value, 3)}
    return {"waited_s": round(clock() - started, 1), "idle": False, "busy": None if value is None else round(value, 3)}


def knee(spare: list[dict], first: dict, args, amqp_uri: str, store: "Store", output: OutputEvents,
         services: Iterable[str], procs: "ProcessSampler", handled: "HandledCounter",
         settle: Callable[[], Any]) -> dict:
    """`--knee`: latency phases below the main one's rate until the highest rate meeting the p99 target is
    bracketed (services/simulator/bench_knee.py). Each probe starts on a settled suite (the backlog dropped or
    waited out, as before the half-capacity phase) with events of its own, about 300 of them sampled."""
    from services.simulator import bench_knee

    left = list(spare)

    def probe(rate: float) -> dict | None:
        count = max(1, int(rate * args.knee_seconds))
        if len(left) < count:  # (a half-capacity phase above its budget took them): the search ends here
            log(f"knee: {len(left)} events left, {count} needed for {rate:g} events/s")
            return None
        mine, left[:] = left[:count], left[count:]
        settle()
        log(f"knee: probing {rate:g} events/s")
        return latency(mine, amqp_uri, store, output, rate, max(1, round(count / 300)), services, wait=30,
                       saturated_after=args.saturated_after, procs=procs, metric_urls=handled.every)

    found = bench_knee.search(first, probe, args.knee_p99_ms, TARGETS.rate_tolerance, args.knee_probes)
    log(f"knee: p99 <= {args.knee_p99_ms:g} ms up to {found['rate_per_s']} events/s "
        f"(lowest failing {found['lowest_failed_per_s']}, {found['probes']} probes)")
    return found


def settle_backlog(amqp_uri: str, broker: Broker | None, vhost: str | None, use_running: bool,
                   handled: HandledCounter, measured: dict) -> str:
    """Before a latency phase: drop the backlog (a suite the bench started) or wait it out (a running
    one), then wait until the services finish what they had already taken (counters flat for 3 s)."""
    waiting = None
    if not use_running:
        waiting = purge_queues(amqp_uri, broker.queues(vhost) if broker and vhost else suite_queues())
    wait_until_flat(handled, timeout=60 if waiting is not None else 900)
    if waiting is not None:
        return f"持续吞吐阶段在 {measured['seconds']} 秒内未处理完，已清除队列中积压的 {waiting} 条消息后再测延迟"
    return "持续吞吐阶段未在时限内处理完；运行中的套件不清队列，已等待积压处理完后再测延迟"


if __name__ == "__main__":
    sys.exit(main())
