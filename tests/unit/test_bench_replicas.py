"""`--replicas`: the bench starts competing consumers of a service and counts them as that service."""
import pytest

from services.simulator import bench


def test_parse_replicas_reads_repeated_values():
    assert bench.parse_replicas(["penalty=2", "personnel=3"]) == {"penalty": 2, "personnel": 3}
    assert bench.parse_replicas(None) == {}


@pytest.mark.parametrize("value", ["penalty", "penalty=0", "penalty=x", "nosuch=2", "=2"])
def test_parse_replicas_refuses_what_it_cannot_start(value):
    with pytest.raises(SystemExit) as err:
        bench.parse_replicas([value])
    assert value in str(err.value)


def test_an_http_facing_process_cannot_be_replicated():
    with pytest.raises(SystemExit) as err:
        bench.parse_replicas(["gateway=2"])
    assert "HTTP-facing" in str(err.value)
    assert bench.parse_replicas(["gateway=1"]) == {"gateway": 1}


def test_replica_keys_map_back_to_their_service():
    keys = [bench.replica_key("penalty", i) for i in range(3)]
    assert keys == ["penalty", "penalty#2", "penalty#3"]
    assert {bench.service_of_key(k) for k in keys} == {"penalty"}


def test_handled_counter_counts_every_replica_of_the_owning_service(monkeypatch):
    pages = {
        "u1": 'zhifa_entrypoint_calls_total{service="penalty",event_type="case.*"} 7.0\n',
        "u2": 'zhifa_entrypoint_calls_total{service="penalty",event_type="case.*"} 5.0\n'
              'zhifa_entrypoint_errors_total{service="penalty",event_type="case.*"} 1.0\n',
    }

    class Resp:
        def __init__(self, url):
            page, _, query = url.partition("?")
            assert query == "name%5B%5D=zhifa_entrypoint_calls_total&name%5B%5D=zhifa_entrypoint_errors_total"
            self.text = pages[page]  # (asks for only the two counters it reads)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return self.text.encode()

    monkeypatch.setattr(bench.urllib.request, "urlopen", lambda url, timeout: Resp(url))
    monkeypatch.setitem(bench.SERVICE_OF, "case", "penalty")
    counter = bench.HandledCounter({"penalty": "u1", "penalty#2": "u2"})
    assert counter() == 11


def test_the_raw_ceiling_gets_as_many_consumers_as_the_widest_service_has_processes():
    assert bench.per_service(["gateway", "penalty", "penalty#2", "personnel"]) == {"gateway": 1, "penalty": 2, "personnel": 1}
    assert bench.widest(["gateway", "penalty", "penalty#2", "penalty#3"]) == 3
    assert bench.widest(["gateway", "personnel"]) == 1 and bench.widest([]) == 1
    assert bench.partitioned() == {"penalty"}
