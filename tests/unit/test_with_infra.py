"""scripts/with-infra.sh: calls sharing a profile's servers — the last one out stops what an earlier one
started (`make run` in one terminal and `make bench` in another both use the `run` profile; before, the
first to end stopped the servers under the other). A stand-in infra.sh records `up` and `down`; no server
starts here."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "with-infra.sh"

STAND_IN = """#!/usr/bin/env bash
# stand-in for scripts/infra.sh: `up` says it started $STUB_STARTS, `down` is recorded
case "$1" in
  up) echo "up $2 ${STUB_STARTS:-}" >> "$STUB_LOG"; echo "export ZHIFA_INFRA_STARTED=\\"${STUB_STARTS:-}\\"" ;;
  down) shift; echo "down $*" >> "$STUB_LOG" ;;
esac
"""


@pytest.fixture
def stage(tmp_path):
    profile = f"wtest{uuid.uuid4().hex[:8]}"
    infra = tmp_path / "infra.sh"
    infra.write_text(STAND_IN)
    infra.chmod(0o755)
    log = tmp_path / "calls.log"
    log.touch()
    procs: list[subprocess.Popen] = []

    def call(*options: str, starts: str = "", gate: str = "go", command: str | None = None) -> subprocess.Popen:
        """with-infra.sh running `command` (default: wait until the file `gate` exists)."""
        env = {**os.environ, "ZHIFA_INFRA_SH": str(infra), "ZHIFA_BOOTSTRAP_SH": "true",
               "STUB_LOG": str(log), "STUB_STARTS": starts, "CI": ""}
        command = command or f'while [ ! -e "{tmp_path / gate}" ]; do sleep 0.02; done'
        proc = subprocess.Popen(["bash", str(SCRIPT), profile, *options, "--", "bash", "-c", command],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        return proc

    def lines() -> list[str]:
        return log.read_text().splitlines()

    def wait_for(what, seconds: float = 10.0) -> None:
        deadline = time.monotonic() + seconds
        while not what():
            assert time.monotonic() < deadline, f"timed out; calls so far: {lines()}"
            time.sleep(0.02)

    def release(gate: str, proc: subprocess.Popen) -> int:
        (tmp_path / gate).touch()
        return proc.wait(10)

    yield SimpleNamespace(call=call, lines=lines, wait_for=wait_for, release=release, profile=profile,
                          users=ROOT / ".run" / profile / "users")
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    shutil.rmtree(ROOT / ".run" / profile, ignore_errors=True)


def _downs(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("down")]


def test_a_call_alone_stops_what_it_started(stage):
    proc = stage.call(starts="rabbitmq ferretdb")
    assert stage.release("go", proc) == 0
    assert _downs(stage.lines()) == [f"down {stage.profile} ferretdb rabbitmq"]


def test_a_call_that_started_nothing_stops_nothing(stage):
    proc = stage.call(starts="")
    assert stage.release("go", proc) == 0
    assert _downs(stage.lines()) == []


def test_the_first_to_end_leaves_the_servers_to_the_last_one_out(stage):
    first = stage.call(starts="rabbitmq ferretdb", gate="first")
    stage.wait_for(lambda: len(stage.lines()) == 1)
    second = stage.call(starts="", gate="second")  # (found them running: started nothing)
    stage.wait_for(lambda: len(stage.lines()) == 2)
    assert stage.release("first", first) == 0
    assert _downs(stage.lines()) == []  # the second still uses them
    assert "stay up for another call" in first.stderr.read()
    assert second.poll() is None
    assert stage.release("second", second) == 0
    assert _downs(stage.lines()) == [f"down {stage.profile} ferretdb rabbitmq"]
    assert not (stage.users / "stop").exists()


def test_a_last_one_out_with_keep_leaves_them_running(stage):
    first = stage.call(starts="rabbitmq", gate="first")
    stage.wait_for(lambda: len(stage.lines()) == 1)
    second = stage.call("--keep", starts="", gate="second")
    stage.wait_for(lambda: len(stage.lines()) == 2)
    assert stage.release("first", first) == 0
    assert stage.release("second", second) == 0
    assert _downs(stage.lines()) == []
    assert not (stage.users / "stop").exists()  # (a later call does not stop what was kept)
    assert stage.release("go", stage.call(starts="")) == 0
    assert _downs(stage.lines()) == []


def test_a_call_that_died_does_not_hold_the_servers_up(stage):
    stage.users.mkdir(parents=True, exist_ok=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (stage.users / str(dead.pid)).touch()  # (a call killed with SIGKILL left its entry)
    proc = stage.call(starts="ferretdb")
    assert stage.release("go", proc) == 0
    assert _downs(stage.lines()) == [f"down {stage.profile} ferretdb"]
    assert not (stage.users / str(dead.pid)).exists()


def test_the_exit_code_is_the_commands(stage):
    assert stage.call(starts="ferretdb", command="exit 3").wait(10) == 3
    assert _downs(stage.lines()) == [f"down {stage.profile} ferretdb"]


def test_a_pid_now_running_another_program_does_not_hold_the_servers_up(stage):
    stage.users.mkdir(parents=True, exist_ok=True)
    other = subprocess.Popen(["sleep", "30"])  # (the pid a dead call left, given to another program since)
    try:
        (stage.users / str(other.pid)).touch()
        proc = stage.call(starts="ferretdb")
        assert stage.release("go", proc) == 0
        assert _downs(stage.lines()) == [f"down {stage.profile} ferretdb"]
    finally:
        other.kill()
        other.wait(5)


def test_a_damaged_stop_list_stops_the_servers_it_names_and_ignores_the_rest(stage):
    stage.users.mkdir(parents=True, exist_ok=True)
    # (a partial write, an editor's stray text, a glob: infra.sh refuses a list with an unknown name,
    # which left every server up)
    (stage.users / "stop").write_text("rabbitmq ferretd\x00b\n* ../x postgresql;rm\nferretdbx\n")
    proc = stage.call(starts="")
    assert stage.release("go", proc) == 0
    assert _downs(stage.lines()) == [f"down {stage.profile} rabbitmq"]
    assert not (stage.users / "stop").exists()
