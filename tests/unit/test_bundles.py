"""Bundles of admitted events (services/kernel/bundles.py): keys, targets from the declarations, the
body's shape and what a malformed one gets."""
import pytest
from nameko.events import EventHandler

from services.kernel import bundles, manifest as m
from services.kernel.confirms import json_bytes
from tests.fixtures.echo_service.manifest import MANIFEST as ECHO


@pytest.mark.parametrize("pattern,key,expected", [
    ("case.*", "case.filed", True), ("case.*", "case.filed.late", False), ("case.*", "case", False),
    ("case.#", "case", True), ("case.#", "case.a.b", True), ("#", "x.y", True), ("*.changed", "officer.changed", True),
    ("officer.changed", "officer.changed", True), ("officer.changed", "officer.registered", False),
    ("#.filed", "case.filed", True), ("a.#.z", "a.z", True), ("a.#.z", "a.b.c.z", True), ("a.#.z", "a.b.c", False),
])
def test_topic_matching_is_the_brokers(pattern, key, expected):
    assert bundles.topic_matches(pattern, key) is expected


def test_a_bundle_key_is_plain_words_one_per_handler():
    key = bundles.bundle_key("gateway", "penalty", "case.*")
    assert key == bundles.bundle_key("gateway", "penalty", "case.*") and bundles.is_bundle_key(key)
    assert "*" not in key and "#" not in key and key.startswith("zhifa_bundle.penalty.")
    assert len({key, bundles.bundle_key("gateway", "penalty", "case.#"), bundles.bundle_key("gateway", "other", "case.*"),
                bundles.bundle_key("personnel", "penalty", "case.*")}) == 4
    assert not bundles.is_bundle_key("case.filed") and not bundles.is_bundle_key(None)


def test_targets_come_from_the_declarations():
    assert bundles.targets("gateway", "case.filed") == (bundles.bundle_key("gateway", "penalty", "case.*"),)
    assert bundles.targets("gateway", "officer.registered") == (bundles.bundle_key("gateway", "personnel", "officer.*"),)
    # a handler of several patterns has one key, its first pattern's: an officer's facts travel together
    for event_type in ("credential.issued", "training.completed"):
        assert bundles.targets("gateway", event_type) == bundles.targets("gateway", "officer.registered")
    assert bundles.targets("gateway", "no_such.type") == ()
    assert bundles.targets("personnel", "officer.changed")  # (other sources have declared consumers too)


def test_a_declaration_registered_later_is_a_target_at_once():
    assert bundles.targets("gateway", "note.added") == ()
    m.register(ECHO)
    try:
        assert bundles.targets("gateway", "note.added") == (bundles.bundle_key("gateway", "echo", "note.*"),)
    finally:
        m.unregister(ECHO.name)
    assert bundles.targets("gateway", "note.added") == ()


def test_every_declared_consumer_of_the_gateway_has_a_handler_binding_its_key():
    """The gateway sends bundles to the keys the declarations give; each declared service's class has an
    event handler for that (source, pattern), whose queue binds the same key (ReliableEventHandler)."""
    from importlib import import_module

    from services.kernel.messaging import ReliableEventHandler

    for declared in m.manifests():
        wanted = {patterns for s, patterns in declared.handlers() if s == "gateway"}
        if not wanted:
            continue
        module, _, name = declared.service.partition(":")
        cls = getattr(import_module(module), name)
        assert cls.name == declared.name
        found = {getattr(ep, "patterns", (ep.event_type,)) for attr in dir(cls)
                 for ep in getattr(getattr(cls, attr), "nameko_entrypoints", ())
                 if isinstance(ep, EventHandler) and ep.source_service == "gateway"}
        assert found == wanted, declared.name
        assert all(isinstance(ep, ReliableEventHandler) for attr in dir(cls)
                   for ep in getattr(getattr(cls, attr), "nameko_entrypoints", ()) if isinstance(ep, EventHandler))


def test_a_body_round_trips_and_a_malformed_one_is_refused():
    env = {"event_id": "e1", "type": "case.filed", "dept": "d", "payload": {}}
    assert bundles.parts(bundles.body([("00-a-b-01", env), (None, env)])) == [("00-a-b-01", env), (None, env)]
    assert bundles.unbundled("zhifa_bundle.penalty.x", bundles.body([(None, env)])) == [("case.filed", env)]
    assert bundles.unbundled("case.filed", env) == [("case.filed", env)]
    for bad in (None, [], "x", {"bundle": 2, "events": [[None, env]]}, {"bundle": 1, "events": []},
                {"bundle": 1, "events": "x"}, {"bundle": 1, "events": [[None]]}, {"bundle": 1, "events": [[1, env]]},
                {"bundle": 1, "events": [[None, "env"]]}, {"bundle": 1, "events": [None] * 3}):
        with pytest.raises(bundles.MalformedBundle):
            bundles.parts(bad)
    with pytest.raises(bundles.MalformedBundle):
        bundles.parts({"bundle": 1, "events": [[None, env]] * 11}, max_parts=10)
    assert json_bytes({"s": "\ud800"})  # a lone surrogate keeps its escape


def test_a_batching_handler_of_the_gateway_divides_its_prefetch_by_the_bundle_size():
    from nameko import config

    with config.patch({"GATEWAY_BUNDLE_MAX": 10}, clear=False):
        assert bundles.events_per_message("gateway") == 10
        assert bundles.events_per_message("personnel") == 1  # (its officer.changed come one per message)
    with config.patch({"GATEWAY_BUNDLE_MAX": 0}, clear=False), pytest.raises(ValueError, match="GATEWAY_BUNDLE_MAX"):
        bundles.bundle_max()
