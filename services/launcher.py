"""`make run`: start every Zhifa service process, load the demo county, print the URLs.

One process per service (`nameko run`), so each can be killed, restarted and scaled alone and
only the gateway process has an HTTP-facing service. Ctrl-C stops everything started here.
"""
from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)  # eventlet announces its deprecation on import

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "services" / "config.yaml"

# name -> (nameko service path, metrics/health port env)
PROCESSES = {
    "gateway": ("services.gateway.service:GatewayService", None),
    "personnel": ("services.personnel.service:PersonnelService", 9101),
    "registry": ("services.registry.service:RegistryService", 9102),
    "penalty": ("services.penalty.service:PenaltyService", 9103),
}


def available() -> dict:
    """Processes whose service module exists in this checkout."""
    out = {}
    for name, (path, port) in PROCESSES.items():
        module = path.split(":")[0].replace(".", "/") + ".py"
        if (ROOT / module).exists():
            out[name] = (path, port)
    return out


def child_env(name: str, port: int | None, base: dict | None = None) -> dict:
    env = dict(base or os.environ)
    env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if port:
        env["METRICS_PORT"] = str(port)
    return env


def start(name: str, env: dict | None = None, log_dir: Path | None = None) -> subprocess.Popen:
    path, port = PROCESSES[name]
    log_dir = log_dir or ROOT / ".run" / "run" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / f"{name}.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "nameko", "run", "--config", str(CONFIG), path],
        env=child_env(name, port, env), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        start_new_session=True,
    )


def wait_healthy(url: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
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
    parser = argparse.ArgumentParser(description="Run the Zhifa suite")
    parser.add_argument("--only", choices=sorted(PROCESSES), help="run one service process in the foreground")
    parser.add_argument("--no-demo", action="store_true", help="do not load the demo county")
    args = parser.parse_args(argv)

    if args.only:
        path, port = PROCESSES[args.only]
        os.execvpe(sys.executable, [sys.executable, "-m", "nameko", "run", "--config", str(CONFIG), path],
                   child_env(args.only, port))

    web = os.environ.get("WEB_SERVER_ADDRESS", "127.0.0.1:8000")
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
        for name in available():
            procs[name] = start(name)
        checks = {"gateway": f"http://{web}/health"}
        checks.update({n: f"http://127.0.0.1:{p}/health" for n, (_, p) in available().items() if p})
        for name, url in checks.items():
            if not wait_healthy(url):
                print(f"zhifa: {name} did not become healthy; see .run/run/logs/{name}.log", file=sys.stderr)
                return 1
        if not args.no_demo:
            from services.demo import load_demo

            summary = load_demo(os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"))
            print(f"zhifa: demo county loaded ({summary})")
        print("zhifa: the suite is running")
        print(f"  HTTP API        http://{web}/api/v1/officers")
        print(f"  ingress (HTTP)  POST http://{web}/api/v1/events")
        print(f"  gateway metrics http://{web}/metrics")
        for name, (_, port) in available().items():
            if port:
                print(f"  {name:<15} http://127.0.0.1:{port}/metrics")
        mgmt = os.environ.get("RABBIT_MGMT_URI")
        if mgmt:
            print(f"  RabbitMQ mgmt   {mgmt.replace('guest:guest@', '')}  (guest/guest)")
        print("  logs            .run/run/logs/   —  Ctrl-C stops everything")
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"zhifa: {name} exited ({proc.returncode}); restarting", file=sys.stderr)
                    procs[name] = start(name)
            time.sleep(0.5)
        return 0
    finally:
        print("zhifa: stopping services", file=sys.stderr)
        stop_all(procs)


if __name__ == "__main__":
    sys.exit(main())
