"""The findings inbox merges the pages of several services with true totals (no cut at 1,000)."""
import random

import pytest

from services.api.service import _sort_key, merged_page

SEVERITIES = ("critical", "serious", "warning", "info")


def make_source(name: str, n: int, rng: random.Random) -> list[dict]:
    """A service's list as it answers it: by severity, department, rule (rule ids are the service's
    own), and within a rule in the order raised (here: the order made)."""
    items = [{"finding_key": f"{name}-{i:05d}", "severity": rng.choice(SEVERITIES),
              "dept": rng.choice(("511322-scjg", "511322-sthj")), "rule_id": f"{name[:3].upper()}-{rng.randint(1, 3)}"}
             for i in range(n)]
    return sorted(items, key=_sort_key)


@pytest.fixture
def sources():
    rng = random.Random(7)
    return {"personnel": make_source("personnel", 37, rng), "registry": make_source("registry", 0, rng),
            "penalty": make_source("penalty", 1234, rng)}


def test_every_page_is_the_slice_of_the_whole_merge_and_the_total_is_true(sources):
    calls = []

    def fetch(service, method, offset, count):
        assert count <= 500  # read in bounded chunks
        calls.append((service, offset, count))
        data = sources[service]
        return {"items": data[offset:offset + count], "total": len(data)}

    everything = sorted((dict(f, source=s) for s, items in sources.items() for f in items), key=_sort_key)
    for offset, limit in ((0, 50), (40, 7), (1000, 100), (1250, 50), (1271, 10), (5000, 10)):
        page, total = merged_page([(s, "list_findings") for s in sources], fetch, offset, limit)
        assert total == 37 + 1234
        assert [f["finding_key"] for f in page] == [f["finding_key"] for f in everything[offset:offset + limit]]
    # a first page does not read a whole source
    calls.clear()
    merged_page([("penalty", "list_findings")], fetch, 0, 20)
    assert calls == [("penalty", 0, 20)]


def test_a_source_that_does_not_answer_is_named_not_fatal(sources):
    from services.api.service import Refusal

    def fetch(service, method, offset, count):
        if service == "registry":
            raise Refusal(503, "service_unavailable", "后端服务 registry 暂不可用")
        data = sources[service]
        return {"items": data[offset:offset + count], "total": len(data)}

    unavailable = []
    page, total = merged_page([(s, "list_findings") for s in sources], fetch, 0, 10, unavailable)
    assert unavailable == ["registry"] and total == 37 + 1234 and len(page) == 10
    with pytest.raises(Refusal):  # without the list to report it in, the failure stands
        merged_page([("registry", "list_findings")], fetch, 0, 10)


def test_one_source_is_read_at_its_page_only(sources):
    calls = []

    def fetch(service, method, offset, count):
        calls.append((service, offset, count))
        data = sources[service]
        return {"items": data[offset:offset + count], "total": len(data)}

    page, total = merged_page([("penalty", "list_findings")], fetch, 1000, 100)
    assert calls == [("penalty", 1000, 100)]  # not the 1,100 findings before the page's end
    assert total == 1234 and [f["finding_key"] for f in page] == [f["finding_key"] for f in sources["penalty"][1000:1100]]
    assert {f["source"] for f in page} == {"penalty"}
