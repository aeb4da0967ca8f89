"""`make run`: start every Zhifa service process, load the demo county, print the URLs.

One process per declared service (`nameko run`; the table comes from the `zhifa.services`
entry points, services/kernel/manifest.py), so each can be killed, restarted and scaled alone.
A process has at most one HTTP-facing service, on its declared `http_port`; the others serve
/metrics and /health on their `metrics_port`. Ctrl-C stops everything started here.
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "services" / "config.yaml"


@dataclass(frozen=True)
class Process:
    """One service process of the suite, from the service's declaration (services/*/manifest.py)."""

    name: str
    service: str                 # nameko "module:Class"
    metrics_port: int | None     # METRICS_PORT (/metrics, /health) of a process with no HTTP-facing service
    http_port: int | None        # WEB_SERVER_ADDRESS port of the process's one HTTP-facing service

    @property
    def health_port(self) -> int | None:
        return self.http_port or self.metrics_port

    def health_url(self, host: str = "127.0.0.1") -> str | None:
        return f"http://{host}:{self.health_port}/health" if self.health_port else None


def processes() -> dict[str, Process]:
    """The process table: one process per declared service, in start order."""
    from services.kernel.manifest import manifests

    return {m.name: Process(m.name, m.service, None if m.http_facing else m.metrics_port,
                            m.http_port if m.http_facing else None)
            for m in manifests()}


def available() -> dict[str, Process]:
    """Declared processes whose service module can be found (a declaration without code is skipped)."""
    out = {}
    for name, proc in processes().items():
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
        os.execvpe(sys.executable, command(proc), child_env(proc))

    procs: dict[str, subprocess.Popen] = {}
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        from services.kernel.messaging import declare_topology

        declare_topology(os.environ.get("AMQP_URI"))
        running = available()
        for name, proc in running.items():
            procs[name] = start(proc)
        for name, proc in running.items():
            url = proc.health_url()
            if url and not wait_healthy(url, proc=procs[name]):
                print(f"zhifa: {name} did not become healthy; see .run/run/logs/{name}.log", file=sys.stderr)
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
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"zhifa: {name} exited ({proc.returncode}); restarting", file=sys.stderr)
                    procs[name] = start(running[name])
            time.sleep(0.5)
        return 0
    finally:
        print("zhifa: stopping services", file=sys.stderr)
        stop_all(procs)


if __name__ == "__main__":
    sys.exit(main())
