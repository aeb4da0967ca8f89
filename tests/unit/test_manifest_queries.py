"""RPC arguments of the kernel-built services are checked where they arrive: a bad value is an
answer naming the field, never an exception (the API service turns it into a 400)."""
import pytest
from nameko.testing.services import worker_factory

from plugins.host import build_plugin_manager
from services.kernel.settings import DeptSettings, RunConfig
from services.personnel.service import PersonnelService
from tests.fakes import FakeDb
from tests.unit.test_manifest_settings import NOW, SCJG


@pytest.fixture
def service():
    host = build_plugin_manager(load_entrypoints=False)
    return worker_factory(PersonnelService, db=FakeDb(), plugins=host, clock=lambda: NOW,
                          settings=DeptSettings.of(PersonnelService.manifest, host), conf=RunConfig.from_config())


@pytest.mark.parametrize("kwargs, field", [({"limit": "abc"}, "limit"), ({"limit": 0}, "limit"),
                                           ({"offset": -1}, "offset")])
def test_paging_arguments_are_checked(service, kwargs, field):
    assert service.list_officers(**kwargs)["error"]["field"] == field


@pytest.mark.parametrize("at", ["yesterday", "2025-05-02T10:00:00"])  # not a time / no zone
def test_times_must_be_zoned_iso(service, at):
    assert service.verify_officer("511322-scjg-0001", "market", at)["error"]["field"] == "at"
    refused = service.change_credential("suspend", "511322-scjg-0001", "N1", at, SCJG, reason="x")
    assert refused["ok"] is False and refused["error"]["field"] == "at"


def test_unknown_credential_action_names_the_choices(service):
    refused = service.change_credential("burn", "511322-scjg-0001", "N1", "2025-05-02T10:00:00+08:00", SCJG)
    assert refused["error"]["code"] == "unknown_action" and "suspend" in refused["error"]["message"]


def test_a_command_on_an_unknown_officer_is_refused_by_the_domain(service):
    refused = service.change_credential("suspend", "511322-scjg-0999", "N1", "2025-05-02T10:00:00+08:00", SCJG,
                                        reason="涉嫌违纪")
    assert refused["ok"] is False and refused["error"]["message"]
    assert service.get_officer("511322-scjg-0999") is None  # nothing saved
