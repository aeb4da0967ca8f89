"""The launcher with the database down (a real FerretDB, stopped): a service process that cannot start
exits, and the launcher starts it again after 1, 2, 4 … seconds (one log line per attempt), not in a
tight loop; once FerretDB is back the next attempt comes up healthy and stays up."""
from __future__ import annotations

import os
import time

from services.launcher import Keeper, Process, RestartPolicy, start, stop_all
from tests.helpers import start_ferretdb, stop_process, tcp_open, wait_for


def test_a_service_started_while_the_database_is_down_is_retried_with_back_off_until_it_is_back(
        zhifa_config, tmp_path, free_port):
    from services.kernel.messaging import declare_topology

    declare_topology(zhifa_config["AMQP_URI"])
    db_port, metrics_port = free_port(), free_port()
    env = {**os.environ, "AMQP_URI": zhifa_config["AMQP_URI"], "MONGO_URI": f"mongodb://127.0.0.1:{db_port}/",
           "DB_PREFIX": zhifa_config["DB_PREFIX"], "ACCESS_LOG_LEVEL": "WARNING",
           "MONGO_TIMEOUT_MS": "1000"}  # (each attempt gives up on the absent database after 1 s, not 5)
    registry = Process("registry", "services.registry.service:RegistryService", metrics_port, None)
    launched: list[float] = []
    said: list[tuple[float, str]] = []

    def launch(proc):
        launched.append(time.monotonic())
        return start(proc, env, tmp_path / "logs")

    keeper = Keeper({"registry": registry}, RestartPolicy(base_seconds=1, max_seconds=4, stable_seconds=300),
                    launch=launch, say=lambda line: said.append((time.monotonic(), line)))
    db = None
    try:
        keeper.start_all()
        # nothing answers on the database port: the process exits; each exit is followed by a longer wait
        wait_for(lambda: keeper.poll() or len(said) >= 3, timeout=150, interval=0.2)
        lines = [line for _, line in said]
        assert [line.split("restart attempt ")[1].split(" (")[0] for line in lines[:3]] == \
            ["1 in 1 s", "2 in 2 s", "3 in 4 s"], lines
        assert all(line.startswith("zhifa: registry exited (") for line in lines)
        for (exited_at, _), relaunched_at, delay in zip(said[:2], launched[1:3], (1, 2)):
            assert relaunched_at - exited_at >= delay - 0.05, (said, launched)   # not restarted at once
        log = (tmp_path / "logs" / "registry.log").read_text(errors="replace")
        assert "ServerSelectionTimeoutError" in log or "Connection refused" in log, log[-2000:]

        # the database comes back: the next attempt starts and stays healthy
        db = start_ferretdb(tmp_path, db_port, tmp_path / "ferretdb")
        wait_for(lambda: tcp_open(db_port), timeout=20)
        assert keeper.wait_healthy("registry", registry.health_url(), timeout=90), [line for _, line in said]
        exits = len(said)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            keeper.poll()
            time.sleep(0.2)
        assert len(said) == exits and keeper.running("registry")
    finally:
        stop_all(keeper.procs)
        if db is not None:
            stop_process(db)
