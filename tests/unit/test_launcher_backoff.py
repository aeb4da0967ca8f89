"""The launcher's restart back-off (services/launcher.py: RestartPolicy, Keeper) with fake processes
and a fake clock: an exiting process is started again after 1, 2, 4 … seconds up to the cap, one log
line per attempt, and from the first delay again after a stable run."""
from __future__ import annotations

import pytest

from services.launcher import Keeper, Process, RestartPolicy


class FakeProc:
    def __init__(self):
        self.returncode = None

    def poll(self):
        return self.returncode


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def keeper(policy: RestartPolicy):
    clock, launched, said = Clock(), [], []

    def launch(proc):
        launched.append((proc.name, clock.now))
        return FakeProc()

    k = Keeper({"registry": Process("registry", "services.registry.service:RegistryService", 9102, None)},
               policy, launch=launch, clock=clock, say=said.append)
    return k, clock, launched, said


def test_an_exiting_process_is_restarted_after_doubling_delays_up_to_the_cap():
    k, clock, launched, said = keeper(RestartPolicy(base_seconds=1, max_seconds=5, stable_seconds=60))
    k.start_all()
    gaps = []
    for _ in range(5):
        k.procs["registry"].returncode = 1          # the database is down: it exits at once
        exited_at = clock.now
        k.poll()
        assert not k.running("registry")
        while len(launched) == len(gaps) + 1:       # no restart before the delay is over
            clock.now += 0.25
            k.poll()
        gaps.append(launched[-1][1] - exited_at)
    assert gaps == [1, 2, 4, 5, 5]
    assert len(said) == 5 and "restart attempt 3 in 4 s" in said[2] and said[0].startswith("zhifa: registry exited (1)")
    # a run longer than stable_seconds: back to the first delay
    clock.now += 61
    k.procs["registry"].returncode = -9
    k.poll()
    assert k.due["registry"] == clock.now + 1 and "restart attempt 1 in 1 s" in said[-1]


def test_a_running_process_is_left_alone():
    k, clock, launched, said = keeper(RestartPolicy())
    k.start_all()
    for _ in range(10):
        clock.now += 30
        k.poll()
    assert len(launched) == 1 and said == [] and k.running("registry")


def test_the_policy_comes_from_the_environment_and_bad_values_are_named():
    policy = RestartPolicy.from_env({"LAUNCHER_RESTART_BASE_SECONDS": "0.5", "LAUNCHER_RESTART_MAX_SECONDS": "30"})
    assert (policy.base_seconds, policy.max_seconds, policy.stable_seconds) == (0.5, 30, 60)
    assert [policy.delay(n) for n in (1, 2, 3, 7, 8)] == [0.5, 1, 2, 30, 30]
    with pytest.raises(ValueError, match="LAUNCHER_RESTART_MAX_SECONDS"):
        RestartPolicy.from_env({"LAUNCHER_RESTART_MAX_SECONDS": "soon"})
    with pytest.raises(ValueError, match="LAUNCHER_RESTART_BASE_SECONDS"):
        RestartPolicy.from_env({"LAUNCHER_RESTART_BASE_SECONDS": "0"})
    with pytest.raises(ValueError, match="must not be below"):
        RestartPolicy(base_seconds=10, max_seconds=5)
