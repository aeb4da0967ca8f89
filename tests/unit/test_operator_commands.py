"""The operators' commands (python -m services.penalty.caselist, services.coordination.counters,
services.kernel.findings_index): a database that cannot be reached, or a setting that does not parse, ends
them with exit code 2 and one line saying why — not a traceback, and not exit code 1, which says what a
command found. No server: a port nothing listens on."""
from __future__ import annotations

import pytest

from services.coordination import counters
from services.kernel import findings_index
from services.penalty import caselist

COMMANDS = [(caselist.main, ["check"]), (counters.main, ["check"]), (findings_index.main, ["check", "penalty"])]


@pytest.mark.parametrize("main,argv", COMMANDS, ids=["caselist", "counters", "findings_index"])
def test_an_unreachable_database_is_one_line_and_exit_code_2(main, argv, monkeypatch, capsys):
    monkeypatch.setenv("MONGO_URI", "mongodb://127.0.0.1:1/")
    monkeypatch.setenv("MONGO_TIMEOUT_MS", "200")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("zhifa: 数据库不可用") and "127.0.0.1:1" in err and "\n" not in err


@pytest.mark.parametrize("main,argv", COMMANDS, ids=["caselist", "counters", "findings_index"])
def test_a_setting_that_does_not_parse_is_one_line_and_exit_code_2(main, argv, monkeypatch, capsys):
    monkeypatch.setenv("MONGO_TIMEOUT_MS", "soon")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("zhifa: 设置无效") and "MONGO_TIMEOUT_MS" in err and "\n" not in err
