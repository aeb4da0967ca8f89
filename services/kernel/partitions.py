"""Partitions: a service's ingress facts routed by aggregate, so that each of its processes owns a share.

Several processes of one service used to be competing consumers of its queues only: a case's facts
reached whichever process was free, so two processes held the same case in their caches, judged it on
different facts (findings raised and resolved again) and lost their compare-and-set writes to each other
(docs/benchmark.md, "Two penalty processes"). A service that declares `partition_key` (an envelope path;
penalty's is `payload.case_id`) can run instead as PARTITIONS[service] processes, the *partitions*:

- the gateway puts each admitted event into the bundle of partition `of(value, n)` (a stable hash of the
  key's value, the same in every process and every release), routing key `<bundle key>.p<i>`
  (services/kernel/bundles.py);
- the process of partition `i` (setting PARTITION = i) consumes queue `<handler queue>.p<i>`, bound to
  that key, besides the handler's shared queue (events published alone, retries: any process takes
  them); a process with PARTITION unset consumes every partition's queue — one process serving them
  all, or, in tests, one in-process container;
- so every fact of one aggregate that comes through the gateway is applied by one process, in order,
  against the document that process last saved.

Ownership is an optimisation, never what correctness rests on: the stored version still guards every
save (a write by another process — a retried event, a sweep, a projection change marking cases due —
makes the owner read the document again), and the case list's claims stay. So a mismatch between the
gateway's PARTITIONS and the processes running costs throughput, not facts: a partition whose queue no
process has declared yet sends its bundles back to the gateway, which dispatches their events one by
one to the shared queue (`mandatory`, kernel/confirms.py).

PARTITIONS is text, `<service>=<n>[,<service>=<n>…]` (or a YAML mapping), n between 1 and MAX. Lowering
a count leaves the dropped partitions' queues behind, with what they still hold: the process of partition 0
(or the service's only process, when the count is 1) finds them when it starts (`left_behind`) and consumes
them besides its own, so nothing waits for an operator (docs/architecture.md, "Partitions").
"""
from __future__ import annotations

import functools
import zlib
from typing import Any

SETTING = "PARTITIONS"
INDEX = "PARTITION"
MAX = 64
SUFFIX = ".p"


def parse(value: Any) -> dict[str, int]:
    """{service: partitions} from the setting's text (`penalty=2,inspection=3`) or mapping; ValueError
    naming PARTITIONS and what it must be when it is not one."""
    if isinstance(value, str):
        return dict(_parse_text(value))
    return _parse(value)


@functools.lru_cache(maxsize=16)
def _parse_text(value: str) -> tuple[tuple[str, int], ...]:  # (the gateway reads it for every event)
    return tuple(_parse(value).items())


def _parse(value: Any) -> dict[str, int]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        pairs = [part.partition("=") for part in value.split(",") if part.strip()]
        if any(not sep for _, sep, _ in pairs):
            raise ValueError(f"{SETTING} must be <service>=<count>[,<service>=<count>…], got {value!r}")
        value = {name.strip(): count.strip() for name, _, count in pairs}
    if not isinstance(value, dict):
        raise ValueError(f"{SETTING} must be <service>=<count>[,<service>=<count>…], got {value!r}")
    found: dict[str, int] = {}
    for name, count in value.items():
        number = _small_int(count)
        if not isinstance(name, str) or not name or not 1 <= number <= MAX:
            raise ValueError(f"{SETTING}: {name}={count!r}: the count must be an integer from 1 to {MAX}")
        found[name] = number
    return found


def _small_int(value: Any) -> int:
    """`value` as a non-negative integer of at most three digits (text or int), else -1."""
    text = "" if isinstance(value, bool) else str(value).strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 3 else -1


def checked(key: str = SETTING) -> dict[str, int]:
    """The setting (config.NUMBERS' reader): every named service must be declared with a `partition_key`."""
    from services.kernel import config
    from services.kernel.manifest import manifest

    found = parse(config.get(key))
    for name in found:
        declared = manifest(name)
        if declared is None:
            raise ValueError(f"{SETTING}: {name} is not a declared service")
        if not declared.partition_key:
            raise ValueError(f"{SETTING}: {name} declares no partition_key; its processes can only compete")
    return found


def checked_index(key: str = INDEX) -> int | None:
    """PARTITION (config.NUMBERS' reader): this process's partition, or None (unset: every partition)."""
    from services.kernel import config

    value = config.get(key)
    if value is None or value == "":
        return None
    if not 0 <= _small_int(value) < MAX:
        raise ValueError(f"{INDEX} must be an integer from 0 to {MAX - 1} (or unset: every partition), got {value!r}")
    return int(value)


def counts() -> dict[str, int]:
    """PARTITIONS as set, {service: count}; `checked` validates it when a process starts (config.NUMBERS),
    so the gateway reads it per event without checking it again (its text is parsed once: `_parse_text`)."""
    from services.kernel import config

    return parse(config.get(SETTING))


def count_for(declared: Any) -> int:
    """How many partitions a declared service (ServiceManifest or None) runs as; 1: it is not partitioned."""
    if declared is None or not declared.partition_key:
        return 1
    return counts().get(declared.name, 1)


def count(service: str) -> int:
    """`count_for` the service named `service`."""
    from services.kernel.manifest import manifest

    return count_for(manifest(service))


def owned(service: str) -> list[int]:
    """The partitions whose queues this process of `service` consumes: its own (PARTITION), or every one
    when PARTITION is unset; [] when the service is not partitioned. ValueError when PARTITION is not below
    the service's count."""
    return owned_of(service, count(service))


def owned_of(service: str, n: int) -> list[int]:
    """`owned` for a service that runs as `n` partitions."""
    if n <= 1:
        return []
    index = checked_index()
    if index is None:
        return list(range(n))
    if index >= n:
        raise ValueError(f"{INDEX}={index} but {SETTING} gives {service} {n} partition(s) (0 to {n - 1})")
    return [index]


def of(value: Any, n: int) -> int:
    """The partition of an aggregate key's value among `n`: CRC-32 of its text, stable across processes,
    restarts and Python releases (the built-in `hash` of a str is salted per process)."""
    return zlib.crc32(str(value).encode("utf-8")) % n if n > 1 else 0


def value_at(envelope: dict, path: str) -> Any:
    """The value at a dotted `path` of an envelope (None where a step is missing or not an object)."""
    value: Any = envelope
    for step in path.split("."):
        value = value.get(step) if isinstance(value, dict) else None
    return value


def routing_key(key: str, index: int) -> str:
    """The routing key of partition `index`'s bundles (`key`: the handler's bundle key)."""
    return f"{key}{SUFFIX}{index}"


def queue_name(queue: str, index: int) -> str:
    """The queue of partition `index` of a handler whose shared queue is `queue`."""
    return f"{queue}{SUFFIX}{index}"


def left_behind(amqp_uri: str, queue: str, first: int) -> list[tuple[str, int]]:
    """[(name, messages ready)] of the partition queues of `queue` from index `first` on that exist: those a
    higher PARTITIONS declared (a count of m declared 0 … m-1, so they follow each other: the probe stops at
    the first index without a queue, or at MAX). A passive declare each; [] when the broker cannot be asked
    (the process then starts with its own queues, as before)."""
    from amqp.exceptions import NotFound
    from kombu import Connection

    found: list[tuple[str, int]] = []
    try:
        with Connection(amqp_uri, connect_timeout=5) as conn:
            channel = conn.channel()
            for index in range(first, MAX):
                name = queue_name(queue, index)
                try:
                    _, messages, _ = channel.queue_declare(name, passive=True)
                except NotFound:  # (the broker closed the channel)
                    break
                found.append((name, messages))
            channel.close()
    except Exception:  # noqa: BLE001 — not reachable now: the consumer's own connection reports it
        return found
    return found
