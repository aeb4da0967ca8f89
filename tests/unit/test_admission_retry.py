"""Retry headers: only the suite's signed retries are believed; malformed headers never raise;
compressed bodies unpack only up to the limit."""
import bz2
import lzma
import zlib
from types import SimpleNamespace

import pytest
from kombu import compression

from services.kernel.messaging import (ATTEMPTS_HEADER, ROUTING_KEY_HEADER, SIGNATURE_HEADER, USER_HEADER,
                                       DecompressedTooLarge, Delivery, bound_decompression, delivery_of,
                                       foreign_headers, origin_headers, replay_headers)

Q = "gateway.ingress"
BODY = b'{"event_id": "x"}'


def message(headers=None, routing_key="511322-scjg.officer.registered", user_id="511322-scjg", body=BODY):
    return SimpleNamespace(headers=headers, delivery_info={"routing_key": routing_key},
                           properties={"user_id": user_id} if user_id is not None else {}, body=body)


@pytest.fixture(autouse=True)
def key(monkeypatch):
    from services.kernel import config

    monkeypatch.setattr(config, "get", lambda k: {"INTERNAL_KEY": "test-key", "AMQP_URI": "amqp://x"}.get(k))


def test_broker_values_when_no_internal_headers():
    assert delivery_of(message(), Q) == Delivery("511322-scjg.officer.registered", "511322-scjg", 0, False)


@pytest.mark.parametrize("headers", [
    {ATTEMPTS_HEADER: "abc"}, {ATTEMPTS_HEADER: [1]}, {ATTEMPTS_HEADER: True, SIGNATURE_HEADER: "x"},
    {ATTEMPTS_HEADER: 10**12, SIGNATURE_HEADER: 5}, {ROUTING_KEY_HEADER: {"a": 1}, USER_HEADER: 3.5},
    {ATTEMPTS_HEADER: 2, ROUTING_KEY_HEADER: "511322-sthj.officer.registered", SIGNATURE_HEADER: "0" * 64},
    "not a table", None,
])
def test_unsigned_forged_or_malformed_headers_are_ignored_without_raising(headers):
    got = delivery_of(message(headers), Q)
    assert got == Delivery("511322-scjg.officer.registered", "511322-scjg", 0, False)


def test_signed_retry_keeps_the_original_routing_key_and_user():
    signed = origin_headers(Q, 2, "511322-scjg.officer.registered", "511322-scjg", BODY)
    retried = message(signed, routing_key=Q, user_id="guest")  # how a delay queue hands it back
    assert delivery_of(retried, Q) == Delivery("511322-scjg.officer.registered", "511322-scjg", 2, True)


@pytest.mark.parametrize("change", [
    {"body": b'{"event_id": "y"}'}, {"queue": "personnel.other"},
    {"headers": {ROUTING_KEY_HEADER: "511322-sthj.officer.registered"}}, {"headers": {ATTEMPTS_HEADER: 1}},
    {"headers": {USER_HEADER: "511322-sthj"}},
])
def test_any_change_to_a_signed_retry_breaks_the_signature(change):
    signed = origin_headers(Q, 2, "511322-scjg.officer.registered", "511322-scjg", BODY)
    signed.update(change.get("headers", {}))
    got = delivery_of(message(signed, routing_key=Q, user_id="guest", body=change.get("body", BODY)),
                      change.get("queue", Q))
    assert got.retried is False and got.attempts == 0


def test_signature_depends_on_the_key(monkeypatch):
    signed = origin_headers(Q, 1, "511322-scjg.officer.registered", "511322-scjg", BODY)
    from services.kernel import config

    monkeypatch.setattr(config, "get", lambda k: {"INTERNAL_KEY": "another-key"}.get(k))
    assert delivery_of(message(signed, routing_key=Q), Q).retried is False


def test_replay_starts_again_at_zero_from_the_original_origin():
    stored = {**origin_headers(Q, 3, "511322-scjg.officer.registered", "511322-scjg", BODY),
              "x-zhifa-error": "…", "x-custom": "kept", "compression": "application/x-gzip"}
    headers = replay_headers(Q, stored, BODY)
    assert headers["x-custom"] == "kept" and "compression" not in headers and "x-zhifa-error" not in headers
    got = delivery_of(message(headers, routing_key=Q, user_id="guest"), Q)
    assert got == Delivery("511322-scjg.officer.registered", "511322-scjg", 0, True)


def test_foreign_headers_drop_internal_and_odd_values():
    assert foreign_headers({"x-zhifa-attempts": 9, "a": 1, "b": [1], "c": "x", 3: "y"}) == {"a": 1, "c": "x"}
    assert foreign_headers("junk") == {}


@pytest.fixture
def bounded():
    from services.kernel import messaging

    bound_decompression(4096)
    yield compression.decompress
    compression._decoders.update(messaging._UNBOUNDED_DECODERS)  # process-wide: leave kombu as found


@pytest.mark.parametrize("pack,name", [(zlib.compress, "application/x-gzip"), (bz2.compress, "bzip2"),
                                       (lzma.compress, "application/x-lzma")])
def test_compressed_bodies_unpack_only_up_to_the_limit(bounded, pack, name):
    assert bounded(pack(b"a" * 4096), name) == b"a" * 4096
    bomb = pack(b"\0" * 50_000_000)
    assert len(bomb) < 100_000
    with pytest.raises(DecompressedTooLarge):
        bounded(bomb, name)


def test_gzip_framing_is_accepted_too(bounded):
    import gzip

    assert bounded(gzip.compress(b"{}"), "gzip") == b"{}"


def test_only_database_connection_failures_count_as_an_outage():
    from pymongo.errors import AutoReconnect, OperationFailure, ServerSelectionTimeoutError

    from services.kernel.messaging import PoisonMessage, is_outage

    assert is_outage(AutoReconnect("x")) and is_outage(ServerSelectionTimeoutError("x"))
    assert not is_outage(ConnectionError("x")) and not is_outage(OperationFailure("x"))
    assert not is_outage(PoisonMessage("x")) and not is_outage(ValueError("x"))
