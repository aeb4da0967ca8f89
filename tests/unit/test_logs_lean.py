"""JSON log lines: records made without the caller's frame, thread and process (never shown), the
line itself unchanged (services/kernel/logs.py)."""
import io
import json
import logging

from services.kernel import tracing
from services.kernel.logs import JsonFormatter


def test_a_line_keeps_its_fields_once_records_are_lean():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())  # makes records lean, process-wide
    logger = logging.getLogger("zhifa.test_lean")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    tracing.bind("a" * 32, "e-1")
    try:
        logger.info("admitted %s", "e-1", extra={"service": "gateway", "outcome": "accepted"})
    finally:
        tracing.clear()
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert {k: line[k] for k in ("level", "logger", "msg", "trace_id", "event_id", "service", "outcome")} == {
        "level": "INFO", "logger": "zhifa.test_lean", "msg": "admitted e-1", "trace_id": "a" * 32,
        "event_id": "e-1", "service": "gateway", "outcome": "accepted"}
    assert "ts" in line and not {"pathname", "lineno", "funcName", "threadName", "processName"} & set(line)
    record = logger.makeRecord("x", logging.INFO, "(unknown file)", 0, "m", (), None)
    assert logging._srcfile is None and record.threadName is None and record.processName is None
