"""Per-department settings (zhifa_dept_settings) are applied by every service through the kernel's
`settings` dependency: a department's override changes a rule's outcome for that department only."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from nameko.testing.services import worker_factory

from plugins.hookspecs import hookimpl
from plugins.host import build_plugin_manager
from services.kernel.settings import DeptSettings, RunConfig
from services.personnel.service import PersonnelService
from tests.fakes import FakeDb

CST = timezone(timedelta(hours=8))
NOW = datetime(2025, 5, 20, 10, 0, tzinfo=CST)
SCJG, STHJ, BROKEN = "511322-scjg", "511322-sthj", "511322-jtys"


class CountyPlugin:
    """市场监管 warns of expiring credentials 90 days ahead; one department's override is broken."""

    @hookimpl
    def zhifa_dept_settings(self, dept):
        if dept == SCJG:
            return {"personnel": {"expiry_warning_days": 90}}
        if dept == BROKEN:
            return {"personnel": {"no_such_setting": 1}}
        return None


@pytest.fixture
def host():
    host = build_plugin_manager(load_entrypoints=False)
    assert host.register(CountyPlugin(), name="county")
    return host


@pytest.fixture
def service(host):
    return worker_factory(PersonnelService, db=FakeDb(), plugins=host, clock=lambda: NOW,
                          settings=DeptSettings.of(PersonnelService.manifest, host), conf=RunConfig.from_config())


def facts(dept: str, n: int) -> list[dict]:
    officer_id = f"{dept}-{n:04d}"

    def env(type_, payload):
        return {"event_id": str(uuid.uuid4()), "type": type_, "schema_version": 1,
                "occurred_at": "2025-01-10T09:00:00+08:00", "dept": dept, "source": "test", "payload": payload}

    return [env("officer.registered", {"officer_id": officer_id, "name": "李明", "agency_id": f"A{dept}",
                                       "kind": "officer", "status": "active"}),
            env("credential.issued", {"officer_id": officer_id, "credential_no": f"川A{n:010d}",
                                      "issuer": "四川省人民政府", "issuer_level": "provincial", "areas": ["market"],
                                      "regions": ["511322"], "valid_from": "2020-07-19", "valid_to": "2025-07-19",
                                      "issued_on": "2020-07-19"})]  # 60 days left at NOW


def rules_of(service, dept: str, n: int) -> set[str]:
    for envelope in facts(dept, n):
        service.apply(envelope)
    # judged once the facts that arrived together settled (docs/consistency.md): the deadline sweep then
    service.repository(service.aggregate("officer")).reevaluate(f"{dept}-{n:04d}", NOW + timedelta(minutes=1))
    return {f["rule_id"] for f in service.get_officer(f"{dept}-{n:04d}")["findings"]}


def test_a_department_override_changes_the_rule_for_that_department_only(service, host):
    assert DeptSettings.of(PersonnelService.manifest, host).for_dept(STHJ).expiry_warning_days < 60
    assert "PER-CRED-EXPIRING" in rules_of(service, SCJG, 1)       # 60 days left, warned 90 days ahead
    assert "PER-CRED-EXPIRING" not in rules_of(service, STHJ, 2)   # the preset's look-ahead is shorter


def test_a_broken_override_is_that_plugins_failure_and_the_preset_applies(service, host):
    assert "PER-CRED-EXPIRING" not in rules_of(service, BROKEN, 3)
    [failure] = [f for f in host.failures if f.hook == "zhifa_dept_settings"]
    assert BROKEN in failure.name and "no_such_setting" in failure.error


def test_the_settings_dependency_is_built_once_from_the_declaration(host):
    from services.kernel.plugins import Plugins
    from services.kernel.settings import Settings

    plugins = Plugins()
    plugins.host = host  # as if set up with the county plugin
    class Container:  # what a provider reads of its nameko container
        def __init__(self, dependencies):
            self.dependencies, self.service_cls = dependencies, PersonnelService

    container = Container([plugins])
    provider = Settings().bind(container, "settings")
    provider.setup()
    resolver = provider.get_dependency(None)
    assert resolver is provider.get_dependency(None)               # built once, kept
    assert resolver.for_dept(SCJG).expiry_warning_days == 90       # the container's plugins are used
    lonely = Container([])  # (providers keep a weak reference to their container)
    alone = Settings().bind(lonely, "settings")
    alone.setup()
    assert alone.get_dependency(None).for_dept(SCJG).expiry_warning_days < 90  # a host of its own
