"""`make monitor`: Debian's Prometheus scraping every process of a local suite, alert rules loaded.

The scrape targets come from the service manifests (each process's health/metrics port) plus
RabbitMQ's own exporter (rabbitmq_prometheus, enabled by scripts/infra.sh); the rules are
infra/prometheus/alerts.yml. Grafana is not needed to look at the series: Prometheus's own UI
(http://127.0.0.1:9090) graphs them, and tests/integration/test_monitoring.py proves every panel of
infra/grafana/dashboards/zhifa-overview.json returns data against a running suite.

    python -m services.monitor [--listen 127.0.0.1:9090] [--dir .run/run/prometheus] [--interval 5s]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from services.kernel.manifest import manifests, service_processes

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "infra" / "prometheus" / "alerts.yml"


def local_config(targets: dict[str, str], rabbit_metrics: str | None, interval: str = "5s",
                 alerts: Path = ALERTS) -> dict:
    """A Prometheus configuration for processes on this machine: {process: "host:port"}."""
    scrape = [{
        "job_name": "zhifa", "metrics_path": "/metrics",
        "static_configs": [{"targets": [addr], "labels": {"process": name}} for name, addr in targets.items()],
    }]
    if rabbit_metrics:
        parts = urlsplit(rabbit_metrics)
        scrape.append({"job_name": "rabbitmq", "metrics_path": parts.path or "/metrics",
                       "static_configs": [{"targets": [parts.netloc], "labels": {"process": "rabbitmq"}}]})
    return {"global": {"scrape_interval": interval, "evaluation_interval": interval,
                       "external_labels": {"suite": "zhifa"}},
            "rule_files": [str(alerts)], "scrape_configs": scrape}


def suite_targets(host: str = "127.0.0.1") -> dict[str, str]:
    """Every declared process that serves /metrics, at its declared port (each partition's process too)."""
    return {name: f"{host}:{port}" for m in manifests() for name, _, port in service_processes(m) if port}


def write_config(directory: Path, config: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def command(config_path: Path, data_dir: Path, listen: str) -> list[str]:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    return [binary, f"--config.file={config_path}", f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address={listen}", "--storage.tsdb.retention.time=7d", "--log.level=warn"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Prometheus against the local Zhifa suite")
    parser.add_argument("--listen", default=os.environ.get("PROMETHEUS_LISTEN", "127.0.0.1:9090"))
    parser.add_argument("--dir", default=str(ROOT / ".run" / "run" / "prometheus"))
    parser.add_argument("--interval", default="5s")
    args = parser.parse_args(argv)
    rabbit = os.environ.get("RABBIT_PROMETHEUS_URI", "http://127.0.0.1:15692/metrics")
    directory = Path(args.dir)
    path = write_config(directory, local_config(suite_targets(), rabbit, args.interval))
    cmd = command(path, directory / "data", args.listen)
    if not Path(cmd[0]).exists():
        print("zhifa: prometheus is not installed; run scripts/bootstrap.sh monitor", file=sys.stderr)
        return 1
    print(f"zhifa: Prometheus on http://{args.listen} (targets: {', '.join(suite_targets()) or 'none'}; "
          f"rules: {ALERTS.relative_to(ROOT)}); Ctrl-C stops it", file=sys.stderr)
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    sys.exit(main())
