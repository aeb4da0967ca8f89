"""The bench finds a running suite's processes by command line and environment (services/simulator/bench.py
`find_service_processes`): every replica of a service, each under its process key. Stand-in processes that look
like `nameko run` to /proc; no servers."""
from __future__ import annotations

import os
import subprocess
import sys

from services.simulator.bench import find_service_processes, suite_process_pids

AMQP, PREFIX = "amqp://guest:guest@127.0.0.1:1/", "zhifa_benchfake01_"


def stand_in(target: str, prefix: str = PREFIX) -> subprocess.Popen:
    env = {**os.environ, "AMQP_URI": AMQP, "DB_PREFIX": prefix}
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "nameko", "run", target], env=env)


def test_every_replica_of_a_service_is_found_each_under_its_process_key():
    procs = [stand_in("services.penalty.service:PenaltyService"), stand_in("services.penalty.service:PenaltyService"),
             stand_in("services.gateway.service:GatewayService"),
             stand_in("services.penalty.service:PenaltyService", prefix="zhifa_benchother_")]
    try:
        first, second, gateway, other = (p.pid for p in procs)
        assert find_service_processes(AMQP, PREFIX) == {"penalty": first, "penalty#2": second, "gateway": gateway}
        assert sorted(pid for _, pid in suite_process_pids(AMQP, PREFIX)) == sorted([first, second, gateway])
        assert other not in find_service_processes(AMQP, PREFIX).values()
    finally:
        for p in procs:
            p.kill()
            p.wait()
