"""Services are declared once (services/kernel/manifest.py): everything that lists services reads
the declarations, and a service declared by its own package is picked up with no edit elsewhere."""
import pytest
from nameko.events import EventHandler

from contracts import asyncapi
from services import launcher
from services.kernel import deploy, manifest as m
from services.penalty.service import PenaltyService
from services.personnel.service import PersonnelService
from services.registry.service import RegistryService
from tests.fixtures.echo_service.manifest import MANIFEST as ECHO


@pytest.fixture
def echo():
    m.register(ECHO)
    yield ECHO
    m.unregister(ECHO.name)


def handlers(cls) -> dict[str, set]:
    """Each event handler's (source, pattern) bindings: its event type and the patterns it also takes."""
    return {attr: {(ep.source_service, pattern) for ep in getattr(cls, attr).nameko_entrypoints
                   if isinstance(ep, EventHandler) for pattern in getattr(ep, "patterns", (ep.event_type,))}
            for attr in dir(cls) if getattr(getattr(cls, attr), "nameko_entrypoints", None)}


def test_the_suite_declares_its_services_once():
    assert set(m.names()) >= {"gateway", "personnel", "registry", "penalty"}
    assert m.event_exchange_names()[:1] == ("gateway.events",)
    assert dict(m.findings_sources()).items() >= {"personnel": "list_findings", "registry": "list_findings",
                                                  "penalty": "list_findings"}.items()
    assert set(m.settings_sections()) >= {"penalty", "personnel", "registry"}


def test_event_handlers_are_generated_from_declared_routes():
    for cls in (PersonnelService, RegistryService, PenaltyService):
        found = set().union(*handlers(cls).values())
        assert found == set(cls.manifest.consumed()), cls.name  # every declared consumption, nothing else
    # an officer's facts (officer, credential, training) on one handler and queue; agencies on their own
    assert handlers(PersonnelService)["handle_officer"] == {("gateway", "officer.*"), ("gateway", "credential.*"),
                                                            ("gateway", "training.*")}
    assert handlers(PersonnelService)["handle_agency"] == {("gateway", "agency.*")}
    assert "handle_credential" not in handlers(PersonnelService)
    # a handler the class writes itself wins over generation (leniency lists are no aggregate)
    assert RegistryService.__dict__["handle_leniency_list"].__doc__.startswith("Leniency lists")
    assert "handle_case" in handlers(PenaltyService) and "handle_officer_changed" in handlers(PenaltyService)


def test_the_facts_of_one_aggregate_from_one_source_come_on_one_queue():
    """Two handlers (two queues, two batch workers) applying facts of one aggregate at once lose
    compare-and-set races to each other: each declared aggregate's patterns from one source are one handler's."""
    for declared in m.manifests():
        handler_of: dict = {}
        for source, patterns in declared.handlers():
            for pattern in patterns:
                aggregate = declared.aggregate_for(pattern)
                if aggregate is not None:
                    assert handler_of.setdefault((source, aggregate.name), patterns) == patterns, (declared.name, pattern)
    assert handlers(RegistryService)["handle_item"] == {("gateway", "item.*"), ("gateway", "standard.*")}


def test_names_and_ports_are_unique():
    declared = m.manifests()
    assert len({d.name for d in declared}) == len(declared)
    ports = [d.health_port for d in declared if d.health_port]
    assert len(set(ports)) == len(ports), ports  # two processes cannot serve /health on one port
    assert all(d.http_port for d in declared if d.http_facing)


def test_launcher_table_comes_from_the_declarations():
    table = launcher.processes()
    assert table["gateway"] == launcher.Process("gateway", "services.gateway.service:GatewayService", None, 8000)
    assert table["penalty"].metrics_port == 9103 and table["penalty"].http_port is None
    env = launcher.child_env(table["gateway"], {"PATH": "/bin"})
    assert env["WEB_SERVER_ADDRESS"] == "127.0.0.1:8000" and env["METRICS_PORT"] == "0"
    env = launcher.child_env(table["registry"], {"PATH": "/bin", "WEB_SERVER_ADDRESS": "x:1"})
    assert env["METRICS_PORT"] == "9102" and env["WEB_SERVER_ADDRESS"] == "x:1"
    assert table["personnel"].health_url() == "http://127.0.0.1:9101/health"


def test_an_http_facing_declaration_gets_its_own_port():
    api = m.ServiceManifest("api2", "接口", "services.api.service:ApiService", http_facing=True, http_port=8080)
    m.register(api)
    try:
        proc = launcher.processes()["api2"]
        assert proc.http_port == 8080 and proc.metrics_port is None
        assert launcher.child_env(proc, {"METRICS_HOST": "0.0.0.0"})["WEB_SERVER_ADDRESS"] == "0.0.0.0:8080"
        assert m.health_targets()["api2"] == "http://127.0.0.1:8080/health"
    finally:
        m.unregister("api2")


def test_a_service_declared_by_its_own_package_is_picked_up_everywhere(echo):
    # launcher: a process of its own, started as `nameko run <its class>` with its metrics port
    proc = launcher.processes()["echo"]
    assert proc.service == "tests.fixtures.echo_service.service:EchoService" and proc.metrics_port == 9199
    assert "echo" in launcher.available()
    assert launcher.command(proc)[-1] == proc.service
    # messaging: its event exchange is declared; AsyncAPI: its channel, with the events it publishes
    assert "echo.events" in m.event_exchange_names()
    doc = asyncapi.build()
    refs = {r["$ref"].rsplit("/", 1)[1] for r in doc["channels"]["echo.events"]["subscribe"]["message"]["oneOf"]}
    assert refs == {"finding.raised.v1", "finding.resolved.v1"}
    # findings inbox, health, plugin settings sections
    assert ("echo", "list_findings") in m.findings_sources()
    assert m.health_targets()["echo"] == "http://127.0.0.1:9199/health"
    assert "echo" in m.settings_sections()
    # deployment files: a container and a scrape target, generated
    compose = deploy.render_compose(deploy.COMPOSE.read_text(encoding="utf-8"))
    assert '  echo:\n    <<: *zhifa-process\n    command: ["--only", "echo"]' in compose
    assert 'HEALTH_PORT: "9199"' in compose and "      - echo\n" in compose
    assert '- targets: ["echo:9199"]' in deploy.render_prometheus(deploy.PROMETHEUS.read_text(encoding="utf-8"))


def test_no_channel_for_an_undeclared_service():
    doc = asyncapi.build()
    channels = {c for c in doc["channels"] if c.endswith(".events")}
    assert channels <= set(m.event_exchange_names()) and "echo.events" not in channels
    assert {"gateway.events", "personnel.events", "registry.events", "penalty.events"} <= channels


def test_deployment_files_match_the_declarations():
    assert deploy.drifted() == [], "run: python -m services.kernel.deploy"


def test_a_broken_declaration_does_not_stop_the_suite(monkeypatch):
    class EP:
        name = "broken"

        def load(self):
            raise ImportError("no such module")

    class NotAManifest(EP):
        name = "odd"

        def load(self):
            return object()

    assert _declared_by(monkeypatch, EP(), NotAManifest()) == ()


@pytest.mark.parametrize("entry", [("gateway", ()), ("gateway", ("x.*", "")), ("", "x.*"), ("gateway",), "x.*",
                                   ("gateway", ["x.*"]), ("gateway", 3)])
def test_a_malformed_consumes_entry_is_refused_and_such_a_declaration_left_out(monkeypatch, entry):
    with pytest.raises(ValueError, match="consumes entry"):
        m.ServiceManifest(name="odd", title="t", service="x:Y", consumes=(entry,))

    class EP:
        name = "odd"

        def load(self):
            return lambda: m.ServiceManifest(name="odd", title="t", service="x:Y", consumes=(entry,))

    assert _declared_by(monkeypatch, EP()) == ()


def _declared_by(monkeypatch, *entry_points) -> tuple:
    """The declarations loaded when these are the package's only entry points."""
    monkeypatch.setattr(m, "entry_points", lambda group: list(entry_points))
    m.manifests.cache_clear()
    try:
        return m.manifests()
    finally:
        monkeypatch.undo()
        m.manifests.cache_clear()
