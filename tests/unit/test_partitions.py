"""services/kernel/partitions.py: the setting, the hash, the routing keys and the queues a process owns."""
import zlib

import pytest
from nameko import config as nameko_config

from services.kernel import bundles, config, partitions
from services.kernel.manifest import manifest, service_processes
from services.launcher import child_env, processes


def test_the_setting_reads_text_or_a_mapping_and_names_what_is_wrong():
    assert partitions.parse("penalty=2") == {"penalty": 2}
    assert partitions.parse(" penalty = 3 , other=1 ") == {"penalty": 3, "other": 1}
    assert partitions.parse({"penalty": 4}) == {"penalty": 4}
    assert partitions.parse("") == {} and partitions.parse(None) == {}
    for wrong in ("penalty", "penalty=0", "penalty=two", "penalty=" + "9" * 5000, "penalty=２", f"penalty={partitions.MAX + 1}", "=2", ["penalty"], {"penalty": True}):
        with pytest.raises(ValueError, match="PARTITIONS"):
            partitions.parse(wrong)


def test_only_a_service_with_a_partition_key_can_be_partitioned():
    with nameko_config.patch({"PARTITIONS": "personnel=2"}):
        with pytest.raises(ValueError, match="personnel declares no partition_key"):
            config.checked("PARTITIONS")
        assert partitions.count("personnel") == 1  # (its processes compete, as before)
    with nameko_config.patch({"PARTITIONS": "penalti=2"}), pytest.raises(ValueError, match="penalti is not a declared service"):
        config.checked("PARTITIONS")
    with nameko_config.patch({"PARTITIONS": "penalty=3"}):
        assert config.checked("PARTITIONS") == {"penalty": 3} and partitions.count("penalty") == 3
        assert partitions.count("gateway") == 1  # not named, not partitionable


def test_the_index_is_unset_or_below_the_count():
    with nameko_config.patch({"PARTITIONS": "penalty=2", "PARTITION": ""}):
        assert config.checked("PARTITION") is None and partitions.owned("penalty") == [0, 1]
    with nameko_config.patch({"PARTITIONS": "penalty=2", "PARTITION": 1}):
        assert partitions.owned("penalty") == [1]
        assert partitions.owned("personnel") == []  # not partitioned: its shared queue only
    with nameko_config.patch({"PARTITIONS": "penalty=2", "PARTITION": "2"}):
        with pytest.raises(ValueError, match="PARTITION=2"):
            partitions.owned("penalty")
    for wrong in ("-1", "x", True, partitions.MAX, "9" * 5000, 1.5):
        with nameko_config.patch({"PARTITION": wrong}), pytest.raises(ValueError, match="PARTITION must be"):
            config.checked("PARTITION")
    with nameko_config.patch({"PARTITIONS": "penalty=1"}):
        assert partitions.owned("penalty") == []  # one partition: the shared queue, as an unpartitioned service


def test_the_hash_is_crc32_of_the_text_so_every_process_and_release_agrees():
    assert partitions.of("SCJG-2026-0001", 2) == zlib.crc32(b"SCJG-2026-0001") % 2
    assert partitions.of("案件一", 5) == zlib.crc32("案件一".encode()) % 5
    assert partitions.of("anything", 1) == 0
    spread = {partitions.of(f"case-{i}", 4) for i in range(200)}
    assert spread == {0, 1, 2, 3}
    assert partitions.value_at({"payload": {"case_id": "c1"}}, "payload.case_id") == "c1"
    assert partitions.value_at({"payload": "x"}, "payload.case_id") is None


def test_the_gateway_routes_a_case_fact_to_its_partition_and_other_facts_as_before():
    key = bundles.bundle_key("gateway", "penalty", "case.*")
    fact = {"type": "case.filed", "payload": {"case_id": "SCJG-7"}}
    with nameko_config.patch({"PARTITIONS": "penalty=2"}):
        assert bundles.routed("gateway", fact) == [f"{key}.p{zlib.crc32(b'SCJG-7') % 2}"]
        assert bundles.routed("gateway", {"type": "officer.registered", "payload": {}}) == \
            [bundles.bundle_key("gateway", "personnel", "officer.*")]
    with nameko_config.patch({"PARTITIONS": "penalty=1"}):
        assert bundles.routed("gateway", fact) == [key]
    assert bundles.is_bundle_key(partitions.routing_key(key, 1))


def test_the_launcher_starts_one_process_per_partition_with_its_index_and_port():
    penalty = manifest("penalty")
    assert penalty.partition_key == "payload.case_id"
    with nameko_config.patch({"PARTITIONS": "penalty=3"}):
        assert [(n, i) for n, i, _ in service_processes(penalty)] == [("penalty", 0), ("penalty#2", 1), ("penalty#3", 2)]
        table = processes()
    assert table["penalty#3"].metrics_port == penalty.metrics_port + 200
    assert child_env(table["penalty#2"], {})["PARTITION"] == "1"
    assert "PARTITION" not in child_env(table["personnel"], {})
    assert list(processes({"penalty": 1})).count("penalty#2") == 0
