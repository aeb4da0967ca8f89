"""Configuration: nameko YAML with ${VAR:default} substitution, and typed accessors.

nameko's config is global (`nameko.config`); every setting has a default here so a service
runs with no configuration at all. The README lists every setting in one table.
"""
from __future__ import annotations

import math
import os
import re
from functools import partial
from typing import Any, Callable

import yaml

from services.kernel import partitions
from services.kernel.manifest import HEALTH_LAYOUTS

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")

DEFAULTS: dict[str, Any] = {
    "AMQP_URI": "amqp://guest:guest@127.0.0.1:5672/",
    "MONGO_URI": "mongodb://127.0.0.1:27017/",
    "DB_PREFIX": "zhifa_",
    "MONGO_TIMEOUT_MS": 5000,
    "RETRY_DELAYS_MS": [1000, 5000, 30000],
    "OUTBOX_SWEEP_SECONDS": 30,
    "DEADLINE_SWEEP_SECONDS": 30,
    "DEADLINE_SWEEP_SPREAD_SECONDS": 10,  # one deadline scan's due aggregates judged over this long, a share each second (kernel/base.py DueShare)
    "METRICS_PORT": 0,
    "METRICS_HOST": "127.0.0.1",
    "FINDINGS_RECOUNT_SECONDS": 60,
    "COUNTS_REPAIR_ENTRIES_SECONDS": 600,  # coordination: how often the counts' repair reads the inbox entries (services/coordination/service.py)
    "JURISDICTION_PRESET": "seed001",
    "PLUGINS_ENABLED": None,
    "INGRESS_MAX_BYTES": 65536,
    "INGRESS_MAX_BATCH": 500,
    "INGRESS_BATCH_MAX": 50,
    "GATEWAY_BUNDLE_MAX": 10,  # admitted events of a batch to one consuming handler in one message; 1 = alone (kernel/bundles.py)
    "PUBLISH_CONFIRM_TIMEOUT_SECONDS": 30,
    "INGRESS_YEAR_MIN": 1949,
    "INGRESS_YEAR_MAX": 2100,
    "INTERNAL_KEY": "",
    "STATUS_RPC_TIMEOUT": 3,
    "BATCH_MAX": 600,
    "BATCH_WAIT_MS": 5,
    "BATCH_CONCURRENCY": 64,  # a batch's aggregates decided at once: their saves go in fewer bulks (docs/benchmark.md, forty-eighth session)
    "BATCH_WORKERS": 2,
    "BATCH_BACKLOG_SHARE": 0.5,  # a batch worker beside a running one starts only for this share of a full batch waiting (kernel/messaging.py)
    "BATCH_BACKLOG_WAIT_MS": 500,  # … or once the running batch has taken this long
    "AGGREGATE_CACHE_MB": 16,
    "OUTBOX_UNIT_MARKER_MIN": 2,  # a batch saving this many aggregates of one kind marks their outboxes with one marker; 0 = one each (kernel/aggregates.py)
    "PROJECTION_CACHE_ENTRIES": 5000,
    "PROCESS_MEMO_MB": 16,  # what a process remembers across units of work, all its memos together (kernel/process_memo.py)
    "PROJECTION_CHANGE_SLOTS": 128,
    "PROJECTION_LOG_REUSE_MS": 50,  # a unit of work starts from the projection log as read this recently in its process (kernel/projection_cache.py)
    "CASE_LIST_LAG_MS": 2000,  # penalty's fact batches leave the case list's syncs to one per process per this long; 0 = at each batch's end (penalty/store.py)
    "PARTITIONS": "penalty=2",  # processes a partitioned service runs as, each owning its aggregates (kernel/partitions.py)
    "PARTITION": "",  # this process's partition; unset: every partition (kernel/partitions.py)
    "LOG_LEVEL": "INFO",
    "GC_THRESHOLDS": [20000, 10, 10],  # Python's cyclic collector per service process (kernel/gc_tuning.py)
    "GC_FREEZE": True,
    "DOCUMENTS_TEMPLATE_DIR": "",
    "DOCUMENTS_RPC_TIMEOUT_SECONDS": 10,
    "DOCUMENTS_REPORT_TIMEOUT_SECONDS": 45,  # a report's figures scan the county's data: longer than a lookup
    "API_RPC_TIMEOUT_SECONDS": 15,
    "SUITE_HEALTH_LAYOUT": "local",  # where the API reaches every service process's /health (kernel/manifest.py health_targets)
    "SUITE_HEALTH_TIMEOUT_SECONDS": 2,  # … and how long it waits for each
}


def substitute(text: str, env: dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(2) if m.group(2) is not None else ""), text)


def load_config(path: str | None = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Defaults, then the YAML file (env-substituted), then plain env vars for known keys."""
    env = os.environ if env is None else env
    conf: dict[str, Any] = dict(DEFAULTS)
    if path:
        with open(path, encoding="utf-8") as fh:
            conf.update(yaml.safe_load(substitute(fh.read(), env)) or {})
    for key in DEFAULTS:
        if key in env and env[key] != "":
            conf[key] = yaml.safe_load(env[key]) if key != "AMQP_URI" and key != "MONGO_URI" else env[key]
    return conf


# Throughput tuning that an in-process container (a test's) also takes from a plain env var when
# nameko's config does not set it, so `BATCH_MAX=50 pytest …` runs the whole suite batched.
ENV_TUNING = ("BATCH_MAX", "BATCH_WAIT_MS", "BATCH_WORKERS", "BATCH_BACKLOG_SHARE", "BATCH_BACKLOG_WAIT_MS",
              "BATCH_CONCURRENCY", "GC_THRESHOLDS", "GC_FREEZE", "GATEWAY_BUNDLE_MAX", "PARTITIONS")


def number(key: str, *, integer: bool = True, minimum: float = 1, above: bool = False,
           maximum: float | None = None, default: float | None = None) -> Any:
    """Setting `key` as a finite number >= `minimum` (> it when `above`; <= `maximum` when given), an
    integer when `integer`; `default` when it is unset and a default is given. ValueError naming the
    setting and what it must be when it is not one (a value set in the environment reaches a process
    as text; a boolean is not a number here)."""
    value = get(key)
    if value is None and default is not None:
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        if integer:
            parsed: float = int(value) if not isinstance(value, float) else value
            valid = float(parsed) == int(parsed)
            parsed = int(parsed)
        else:
            parsed = float(value)
            valid = math.isfinite(parsed)
        valid = valid and (parsed > minimum if above else parsed >= minimum) and (maximum is None or parsed <= maximum)
    except (TypeError, ValueError, OverflowError):
        valid = False
    if not valid:
        if integer and not above and minimum in (0, 1):
            what = "a positive integer" if minimum == 1 else "a non-negative integer"
        else:
            what = ("an integer " if integer else "a number ") + (f"> {minimum:g}" if above else f">= {minimum:g}")
        if maximum is not None:
            what += f" <= {maximum:g}"
        raise ValueError(f"{key} must be {what}, got {value!r}")
    return parsed


def positive_int(key: str, default: int | None = None) -> int:
    """Setting `key` as a positive integer (`number`)."""
    return number(key, default=default)


def non_negative_int(key: str, default: int | None = None) -> int:
    return number(key, minimum=0, default=default)


def seconds(key: str, default: float | None = None) -> float:
    """Setting `key` as a duration: a number > 0 (`number`)."""
    return number(key, integer=False, minimum=0, above=True, default=default)


def one_of(choices: tuple[str, ...], key: str) -> str:
    """Setting `key` as one of `choices`; ValueError naming the setting and the choices when it is not."""
    value = get(key)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    return value


def delays(key: str) -> list[int]:
    """Setting `key` as a list of non-negative integers (milliseconds; empty: no retry)."""
    value = get(key)
    try:
        if isinstance(value, list) and all(not isinstance(d, bool) and float(d) == int(d) >= 0 for d in value):
            return [int(d) for d in value]
    except (TypeError, ValueError, OverflowError):
        pass
    raise ValueError(f"{key} must be a list of non-negative integers (milliseconds), got {value!r}")


# Every numeric setting and what it must be, checked together when a service process starts
# (`check_numbers`, from the metrics dependency every service declares): a wrong value stops the
# process at once with every wrong setting named, not at the first request or failure that reads it.
NUMBERS: dict[str, Callable[[str], Any]] = {
    "MONGO_TIMEOUT_MS": positive_int,
    "OUTBOX_SWEEP_SECONDS": seconds,
    "DEADLINE_SWEEP_SECONDS": seconds,
    "DEADLINE_SWEEP_SPREAD_SECONDS": partial(number, integer=False, minimum=0, maximum=3600),
    "FINDINGS_RECOUNT_SECONDS": seconds,
    "COUNTS_REPAIR_ENTRIES_SECONDS": seconds,
    "METRICS_PORT": partial(number, minimum=0, maximum=65535),
    "INGRESS_MAX_BYTES": positive_int,
    "INGRESS_MAX_BATCH": positive_int,
    "INGRESS_BATCH_MAX": positive_int,
    "GATEWAY_BUNDLE_MAX": positive_int,
    "PUBLISH_CONFIRM_TIMEOUT_SECONDS": seconds,
    "INGRESS_YEAR_MIN": positive_int,
    "INGRESS_YEAR_MAX": positive_int,
    "STATUS_RPC_TIMEOUT": seconds,
    "BATCH_MAX": positive_int,
    "BATCH_WAIT_MS": partial(number, integer=False, minimum=0),
    "BATCH_CONCURRENCY": positive_int,
    "BATCH_WORKERS": positive_int,
    "BATCH_BACKLOG_SHARE": partial(number, integer=False, minimum=0, maximum=1),
    "BATCH_BACKLOG_WAIT_MS": partial(number, integer=False, minimum=0),
    "AGGREGATE_CACHE_MB": partial(number, integer=False, minimum=0),
    "OUTBOX_UNIT_MARKER_MIN": non_negative_int,
    "PROJECTION_CACHE_ENTRIES": non_negative_int,
    "PROCESS_MEMO_MB": partial(number, integer=False, minimum=0),
    "PROJECTION_CHANGE_SLOTS": positive_int,
    "PROJECTION_LOG_REUSE_MS": partial(number, integer=False, minimum=0, maximum=10000),
    # (at most 10 s: a record older than that is taken for a dead process's and finished by any process anyway,
    # penalty/store.py INTENT_STALE_SECONDS)
    "CASE_LIST_LAG_MS": partial(number, integer=False, minimum=0, maximum=10000),
    "DOCUMENTS_RPC_TIMEOUT_SECONDS": seconds,
    "DOCUMENTS_REPORT_TIMEOUT_SECONDS": seconds,
    "API_RPC_TIMEOUT_SECONDS": seconds,
    "SUITE_HEALTH_LAYOUT": partial(one_of, HEALTH_LAYOUTS),
    "SUITE_HEALTH_TIMEOUT_SECONDS": seconds,
    "PREFETCH_COUNT": partial(non_negative_int, default=0),
    "RETRY_DELAYS_MS": delays,
    "PARTITIONS": lambda key: partitions.checked(key),
    "PARTITION": lambda key: partitions.checked_index(key),
}


def checked(key: str) -> Any:
    """Setting `key` (one of NUMBERS) read as what NUMBERS says it must be: the one place its kind and
    bounds are written. Its default is DEFAULTS' — except PREFETCH_COUNT's, kept beside its kind: without
    a config file it stays 0 (each batch consumer then takes what its batches need), while services/config.yaml
    gives running services 20."""
    return NUMBERS[key](key)


def check_numbers() -> None:
    """Every setting of NUMBERS read as what it must be; one ValueError naming each wrong one."""
    wrong = []
    for key, read in NUMBERS.items():
        try:
            read(key)
        except ValueError as exc:
            wrong.append(str(exc))
    if wrong:
        raise ValueError("; ".join(wrong))


def get(key: str) -> Any:
    """Read one setting from nameko's global config, falling back to the default (for ENV_TUNING
    keys, first to the environment variable of that name)."""
    from nameko import config

    value = config.get(key)
    if value is None and key in ENV_TUNING and os.environ.get(key, "") != "":
        return load_config(None, {key: os.environ[key]})[key]
    return DEFAULTS.get(key) if value is None else value
