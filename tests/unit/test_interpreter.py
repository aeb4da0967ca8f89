"""The interpreter the suite runs on: scripts/bootstrap.sh makes .venv with Debian's CPython 3.11 where there is one
(or apt-get to install it), unless PYTHON names another (docs/benchmark.md, "Forty-fourth session": Debian's build,
with PGO and LTO, runs the services faster than the plain pyenv build these machines also carry)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEBIAN_PYTHON = Path("/usr/bin/python3.11")


def test_the_suite_runs_on_python_3_11():
    assert sys.version_info[:2] == (3, 11), sys.version


@pytest.mark.skipif(os.environ.get("PYTHON", "") != "" or not DEBIAN_PYTHON.exists(),
                    reason="PYTHON chooses the interpreter, or this machine has no Debian python3.11")
def test_the_venv_runs_debian_s_python_when_none_is_chosen():
    running = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    assert running == DEBIAN_PYTHON.resolve(), (
        f"the tests run on {running}, not Debian's {DEBIAN_PYTHON}: scripts/bootstrap.sh should have made .venv with it")


def test_the_bootstrap_names_the_interpreter_it_would_choose():
    """The choice as the script makes it (no install, no venv: the lines before its steps, run with `bash`)."""
    script = (ROOT / "scripts" / "bootstrap.sh").read_text(encoding="utf-8")
    start = script.index("DEBIAN_PYTHON=")
    end = script.index("STAMPS=", start)
    choose = script[start:end] + 'printf "%s" "$PYTHON"\n'
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    chosen = subprocess.run(["bash", "-c", choose], env=env, capture_output=True, text=True, check=True).stdout
    has_apt = subprocess.run(["bash", "-c", "command -v apt-get"], capture_output=True).returncode == 0
    assert chosen == (str(DEBIAN_PYTHON) if DEBIAN_PYTHON.exists() or has_apt else "python3")
    env["PYTHON"] = "/opt/other/python3"
    chosen = subprocess.run(["bash", "-c", choose], env=env, capture_output=True, text=True, check=True).stdout
    assert chosen == "/opt/other/python3"
