"""`make run`: start every Zhifa service process, load the demo county, print the URLs.

One process per declared service (`nameko run`; the table comes from the `zhifa.services`
entry points, services/kernel/manifest.py), so each can be killed, restarted and scaled alone; a
partitioned service runs as one process per partition (PARTITIONS: `penalty`, `penalty#2`, each with
its PARTITION; services/kernel/partitions.py).
A process has at most one HTTP-facing service, on its declared `http_port`; the others serve
/metrics and /health on their `metrics_port`. Ctrl-C stops everything started here.

A process that exits is started again after an exponentially growing delay (`Keeper`,
`RestartPolicy`: 1 s, 2 s, 4 s … up to `LAUNCHER_RESTART_MAX_SECONDS`), so a service that cannot
start — the database is down, say — is retried calmly until it comes back instead of in a tight
loop; one log line per attempt says when the next one is. A process that ran for
`LAUNCHER_RESTART_STABLE_SECONDS` starts again from the first delay.
"""
from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)  # eventlet announces its deprecation on import
warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")  # EventletDeprecationWarning(Warning)

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "services" / "config.yaml"


@dataclass(frozen=True)
class Process:
    """One service process of the suite, from the service's declaration (services/*/manifest.py)."""

    name: str
    service: str                 # nameko "module:Class"
    metrics_port: int | None     # METRICS_PORT (/metrics, /health) of a process with no HTTP-facing service
    http_port: int | None        # WEB_SERVER_ADDRESS port of the process's one HTTP-facing service
    partition: int | None = None  # PARTITION of one of a partitioned service's processes (kernel/partitions.py)

    @property
    def health_port(self) -> int | None:
        return self.http_port or self.metrics_port

    def health_url(self, host: str = "127.0.0.1") -> str | None:
        return f"http://{host}:{self.health_port}/health" if self.health_port else None


def processes(counts: dict[str, int] | None = None) -> dict[str, Process]:
    """The process table, in start order: one process per declared service, one per partition of a
    partitioned one (`penalty`, `penalty#2`: PARTITIONS, or `counts`; kernel/manifest.py `service_processes`)."""
    from services.kernel.manifest import manifests, service_processes

    return {name: Process(name, m.service, None if m.http_facing else port, m.http_port if m.http_facing else None,
                          partition)
            for m in manifests() for name, partition, port in service_processes(m, counts)}


def available(counts: dict[str, int] | None = None) -> dict[str, Process]:
    """Declared processes whose service module can be found (a declaration without code is skipped)."""
    out = {}
    for name, proc in processes(counts).items():
        if importlib.util.find_spec(proc.service.split(":")[0]) is not None:
            out[name] = proc
        else:
            print(f"zhifa: {name} is declared but {proc.service} is missing; not started", file=sys.stderr)
    return out


def http_host(base: dict | None = None) -> str:
    env = os.environ if base is None else base
    return env.get("HTTP_HOST") or env.get("METRICS_HOST") or "127.0.0.1"


def child_env(proc: Process, base: dict | None = None) -> dict:
    env = dict(os.environ if base is None else base)
    env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if proc.metrics_port:
        env["METRICS_PORT"] = str(proc.metrics_port)
    if proc.partition is not None:
        env["PARTITION"] = str(proc.partition)
    if proc.http_port:  # each HTTP-facing service gets its own port (two in one process steal requests)
        env["WEB_SERVER_ADDRESS"] = f"{http_host(env)}:{proc.http_port}"
        env["METRICS_PORT"] = "0"
    return env


def command(proc: Process) -> list[str]:
    return [sys.executable, "-m", "nameko", "run", "--config", str(CONFIG), proc.service]


def start(proc: Process, env: dict | None = None, log_dir: Path | None = None) -> subprocess.Popen:
    log_dir = log_dir or ROOT / ".run" / "run" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / f"{proc.name}.log", "ab")
    return subprocess.Popen(command(proc), env=child_env(proc, env), stdout=log, stderr=subprocess.STDOUT,
                            cwd=ROOT, start_new_session=True)


def wait_healthy(url: str, timeout: float = 60, proc: subprocess.Popen | None = None) -> bool:
    """True once `url` answers 200; False after `timeout`, or at once if `proc` has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


@dataclass(frozen=True)
class RestartPolicy:
    """When to start an exited process again: `base_seconds` × 2^(n-1) after its n-th exit in a row,
    at most `max_seconds`; a process that ran `stable_seconds` or longer counts from 1 again."""

    base_seconds: float = 1.0
    max_seconds: float = 60.0
    stable_seconds: float = 60.0
    start_timeout_seconds: float = 300.0   # how long `make run` waits for a process to become healthy

    ENV = {"base_seconds": "LAUNCHER_RESTART_BASE_SECONDS", "max_seconds": "LAUNCHER_RESTART_MAX_SECONDS",
           "stable_seconds": "LAUNCHER_RESTART_STABLE_SECONDS", "start_timeout_seconds": "LAUNCHER_START_TIMEOUT_SECONDS"}

    def __post_init__(self):
        for name in self.ENV:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 86400:
                raise ValueError(f"{self.ENV[name]} must be a number of seconds between 0 and 86400, got {value!r}")
        if self.max_seconds < self.base_seconds:
            raise ValueError("LAUNCHER_RESTART_MAX_SECONDS must not be below LAUNCHER_RESTART_BASE_SECONDS")

    @classmethod
    def from_env(cls, env: dict | None = None) -> "RestartPolicy":
        env = os.environ if env is None else env
        given = {}
        for name, var in cls.ENV.items():
            if env.get(var, "").strip():
                try:
                    given[name] = float(env[var])
                except ValueError:
                    raise ValueError(f"{var} must be a number of seconds, got {env[var]!r}") from None
        return cls(**given)

    def delay(self, exits_in_a_row: int) -> float:
        return min(self.max_seconds, self.base_seconds * 2 ** max(0, exits_in_a_row - 1))


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Keeper:
    """Keeps the suite's processes running: an exited one is started again after `policy.delay`."""

    table: dict[str, Process]
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    launch: Callable[[Process], subprocess.Popen] = start
    clock: Callable[[], float] = time.monotonic
    say: Callable[[str], None] = _say
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    started_at: dict[str, float] = field(default_factory=dict)
    exits: dict[str, int] = field(default_factory=dict)       # exits in a row (reset after a stable run)
    due: dict[str, float] = field(default_factory=dict)       # when an exited process starts again

    def start(self, name: str) -> None:
        self.procs[name] = self.launch(self.table[name])
        self.started_at[name] = self.clock()
        self.due.pop(name, None)

    def start_all(self) -> None:
        for name in self.table:
            self.start(name)

    def running(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None and name not in self.due

    def poll(self) -> None:
        """Schedule a restart for every process that exited; start those whose delay is over."""
        now = self.clock()
        for name, proc in self.procs.items():
            if name in self.due or proc.poll() is None:
                continue
            ran = now - self.started_at[name]
            self.exits[name] = 1 if ran >= self.policy.stable_seconds else self.exits.get(name, 0) + 1
            wait = self.policy.delay(self.exits[name])
            self.due[name] = now + wait
            self.say(f"zhifa: {name} exited ({proc.returncode}) after {ran:.1f} s; restart attempt "
                     f"{self.exits[name]} in {wait:g} s (see .run/run/logs/{name}.log)")
        for name, when in list(self.due.items()):
            if when <= now:
                self.start(name)

    def wait_healthy(self, name: str, url: str, timeout: float, stopped: Callable[[], bool] = lambda: False) -> bool:
        """True once `name` answers 200 at `url`, restarting it (with back-off) while it exits."""
        deadline = self.clock() + timeout
        while self.clock() < deadline and not stopped():
            self.poll()
            if self.running(name) and wait_healthy(url, timeout=0.5, proc=self.procs[name]):
                return True
            time.sleep(0.3)
        return False


def stop_all(procs: dict[str, subprocess.Popen]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    table = processes()
    parser = argparse.ArgumentParser(description="Run the Zhifa suite")
    parser.add_argument("--only", choices=sorted(table), help="run one service process in the foreground")
    parser.add_argument("--no-demo", action="store_true", help="do not load the demo county")
    args = parser.parse_args(argv)

    if args.only:
        proc = table[args.only]
        env = child_env(proc)
        if os.environ.get("PARTITION", "") != "":  # (a StatefulSet's pod: its index, services/kernel/k8s.py)
            env["PARTITION"] = os.environ["PARTITION"]
        os.execvpe(sys.executable, command(proc), env)

    try:
        policy = RestartPolicy.from_env()
    except ValueError as exc:
        print(f"zhifa: {exc}", file=sys.stderr)
        return 2
    keeper = Keeper(available(), policy)
    procs = keeper.procs
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        from services.kernel.messaging import declare_topology

        declare_topology(os.environ.get("AMQP_URI"))
        running = keeper.table
        keeper.start_all()
        for name, proc in running.items():
            url = proc.health_url()
            if url and not keeper.wait_healthy(name, url, policy.start_timeout_seconds, lambda: stopping):
                if stopping:
                    return 0
                print(f"zhifa: {name} did not become healthy within {policy.start_timeout_seconds:g} s; "
                      f"see .run/run/logs/{name}.log", file=sys.stderr)
                return 1
        if not args.no_demo:
            from services.demo import load_demo

            summary = load_demo(os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"))
            print(f"zhifa: demo county loaded ({summary})")
        print("zhifa: the suite is running")
        for name, proc in running.items():
            where = f"http://127.0.0.1:{proc.health_port}" if proc.health_port else "(no HTTP)"
            what = "HTTP, /health, /metrics" if proc.http_port else "/health, /metrics"
            print(f"  {name:<15} {where:<28} {what}")
        if "gateway" in running and running["gateway"].http_port:
            print(f"  ingress (HTTP)  POST http://127.0.0.1:{running['gateway'].http_port}/api/v1/events")
        if "api" in running and running["api"].http_port:  # the HTTP API and its demo accounts (services/api/users.py)
            from services.api.users import print_api

            print(f"  console         http://127.0.0.1:{running['api'].http_port}/   (司法局控制台; docs/console.md)")
            print_api(f"http://127.0.0.1:{running['api'].http_port}", demo=not args.no_demo)
        mgmt = os.environ.get("RABBIT_MGMT_URI")
        if mgmt:
            print(f"  RabbitMQ mgmt   {mgmt.replace('guest:guest@', '')}  (guest/guest)")
        print("  logs            .run/run/logs/   —  Ctrl-C stops everything")
        while not stopping:
            keeper.poll()
            time.sleep(0.5)
        return 0
    finally:
        print("zhifa: stopping services", file=sys.stderr)
        stop_all(procs)


if __name__ == "__main__":
    sys.exit(main())
