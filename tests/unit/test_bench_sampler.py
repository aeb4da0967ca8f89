"""The bench's visibility sampler (services/simulator/bench.py `VisibilitySampler`): the samples due at one tick
are looked at with one read per collection, a fact seen settles its sample with its latency, and a fact not
seen yet is looked at again after max(20 ms, 10% of its age), at most 0.5 s later."""
from services.simulator import bench


class FakeStore:
    """What the sampler reads: the facts stored per (service, collection, aggregate), and every read asked."""

    def __init__(self):
        self.facts: dict[tuple[str, str, str], set[str]] = {}
        self.reads: list[tuple[str, str, frozenset]] = []

    def facts_of(self, service, collection, agg_ids):
        ids = frozenset(agg_ids)
        self.reads.append((service, collection, ids))
        return {agg: set(self.facts[(service, collection, agg)]) for agg in ids
                if (service, collection, agg) in self.facts}


def test_samples_due_at_one_tick_are_read_once_per_collection():
    store = FakeStore()
    sampler = bench.VisibilitySampler(store)
    now = bench.time.monotonic()
    sampler.add("e1", "penalty", "cases", "C1", now - 1.0)
    sampler.add("e2", "penalty", "cases", "C2", now - 1.0)
    sampler.add("e3", "penalty", "cases", "C1", now - 1.0)  # a second sample of the same case
    sampler.add("e4", "personnel", "officers", "O1", now - 1.0)
    sampler.add("e5", "penalty", "cases", "C3", now)  # not due yet: its first look is 20 ms after it was sent
    store.facts[("penalty", "cases", "C1")] = {"e1", "x"}
    store.facts[("personnel", "officers", "O1")] = {"e4"}
    sampler.look(now)
    assert sorted(store.reads) == [("penalty", "cases", frozenset({"C1", "C2"})),
                                   ("personnel", "officers", frozenset({"O1"}))]
    assert set(sampler.pending) == {"e2", "e3", "e5"}  # e1 and e4 seen; e3's case holds e1 only
    assert len(sampler.latencies) == 2 and all(0.99 < x < 2.0 for x in sampler.latencies)
    assert sorted(sampler.by_collection) == ["cases", "officers"] and len(sampler.by_collection["cases"]) == 1
    # not seen: looked at again after 10% of its age (≈ 0.1 s here), not at the next tick
    assert 0.09 < sampler.next_look["e2"] - now < 0.2
    store.reads.clear()
    sampler.look(now + 0.05)
    assert store.reads == [("penalty", "cases", frozenset({"C3"}))]  # e5's first look; e2 and e3 not due yet
    store.facts[("penalty", "cases", "C2")] = {"e2"}
    store.reads.clear()
    sampler.look(now + 0.25)
    assert store.reads == [("penalty", "cases", frozenset({"C1", "C2", "C3"}))]
    assert "e2" not in sampler.pending and sampler.oldest_wait() > 1.0  # e3 still waits


def test_latencies_by_half_of_the_publishing_window():
    """A sample counts in the half of the window it was sent in: a suite falling behind shows a slower second half."""
    store = FakeStore()
    sampler = bench.VisibilitySampler(store)
    now = bench.time.monotonic()
    start = now - 10.0
    for i, sent in enumerate([0.5, 2.0, 4.9, 5.0, 9.0]):
        store.facts[("penalty", "cases", f"C{i}")] = {f"e{i}"}
        sampler.add(f"e{i}", "penalty", "cases", f"C{i}", start + sent)
    sampler.look(now)
    # (each seen at `now`: its latency is its age then)
    assert sorted((round(sent - start, 3), round(lat, 3)) for sent, lat in sampler.by_sent) == [
        (0.5, 9.5), (2.0, 8.0), (4.9, 5.1), (5.0, 5.0), (9.0, 1.0)]
    halves = bench.by_half(sampler.by_sent, start, 10.0)
    assert halves["half_s"] == 5.0
    assert halves["first"]["samples"] == 3 and halves["second"]["samples"] == 2
    # from given latencies: the split is at the window's middle, each half's percentiles its own
    pairs = [(start + 1.0, 0.1), (start + 4.0, 0.3), (start + 4.99, 0.2),
             (start + 5.0, 3.0), (start + 6.0, 2.0), (start + 8.0, 4.0)]
    halves = bench.by_half(pairs, start, 10.0)
    assert (halves["first"]["p50_ms"], halves["first"]["max_ms"]) == (200.0, 300.0)
    assert (halves["second"]["p50_ms"], halves["second"]["max_ms"]) == (3000.0, 4000.0)
    assert bench.by_half([], start, 10.0)["first"]["samples"] == 0


def test_a_long_wait_is_looked_at_every_half_second_at_most():
    store = FakeStore()
    sampler = bench.VisibilitySampler(store)
    now = bench.time.monotonic()
    sampler.add("e1", "penalty", "cases", "C1", now - 30.0)
    sampler.look(now)
    assert sampler.next_look["e1"] - now <= 0.5 + 0.05 and "e1" in sampler.pending


def test_workers_between_two_readings_of_the_metric_pages():
    page = ('zhifa_batch_messages_sum{entrypoint="handle_case",service="penalty"} %s\n'
            'zhifa_batch_messages_count{entrypoint="handle_case",service="penalty"} %s\n'
            'zhifa_batch_messages_bucket{entrypoint="handle_case",le="1.0",service="penalty"} 3.0\n'
            'zhifa_batch_messages_sum{entrypoint="handle_ingress",service="gateway"} %s\n'
            'zhifa_batch_messages_count{entrypoint="handle_ingress",service="gateway"} %s\n'
            'zhifa_entrypoint_latency_seconds_sum{entrypoint="handle_case",event_type="case.filed",service="penalty"} %s\n'
            'zhifa_entrypoint_latency_seconds_count{entrypoint="handle_case",event_type="case.filed",service="penalty"} %s\n'
            'zhifa_entrypoint_latency_seconds_sum{entrypoint="handle_case",event_type="case.closed",service="penalty"} %s\n'
            'zhifa_entrypoint_latency_seconds_count{entrypoint="handle_case",event_type="case.closed",service="penalty"} %s\n')
    before = {"a": page % (100, 2, 50, 5, 1.0, 1, 0.5, 1), "gone": page % (1, 1, 1, 1, 1, 1, 1, 1)}
    after = {"a": page % (1100, 6, 2050, 105, 1.6, 3, 1.1, 3)}
    out = bench.workers_between(before, after, 2000)
    # four batches in the window, 1.2 s between them (over both event types); the longest in total first
    assert list(out) == ["penalty.handle_case", "gateway.handle_ingress"]
    assert out["penalty.handle_case"] == {"per_1000_events": 2.0, "mean_messages": 250.0, "mean_ms": 300.0,
                                          "ms_per_event": 0.6}
    assert out["gateway.handle_ingress"] == {"per_1000_events": 50.0, "mean_messages": 20.0}


def test_a_timer_counts_its_runs_and_their_time():
    page = 'zhifa_entrypoint_latency_seconds_sum{entrypoint="sweep",event_type="timer",service="penalty"} %s\n' \
           'zhifa_entrypoint_latency_seconds_count{entrypoint="sweep",event_type="timer",service="penalty"} %s\n'
    out = bench.workers_between({"a": page % (1.0, 10)}, {"a": page % (4.0, 30)}, 1000)
    assert out == {"penalty.sweep": {"per_1000_events": 20.0, "mean_ms": 150.0, "ms_per_event": 3.0}}


def test_the_summary_names_the_workers_that_took_longest_and_the_latency_by_aggregate(capsys):
    workers = {"penalty.handle_case": {"per_1000_events": 2.6, "mean_messages": 335.4, "mean_ms": 1579.5},
               "penalty.sweep": {"per_1000_events": 2.2, "mean_ms": 365.7},
               "gateway.handle_ingress": {"per_1000_events": 48.8, "mean_messages": 20.5}}
    text = bench.workers_text(workers)
    assert text.startswith("（耗时最多的前 3，每千条事件）：")
    assert "penalty.handle_case 2.6 次（每批 335.4 条，平均 1579.5 ms）" in text
    assert "penalty.sweep 2.2 次（平均 365.7 ms）" in text and "gateway.handle_ingress 48.8 次（每批 20.5 条）" in text
    fv = {"p50_ms": 100.0, "p95_ms": 300.0, "p99_ms": 400.0, "samples": 50,
          "by_collection": {"cases": {"samples": 40, "p50_ms": 120.0, "p99_ms": 400.0},
                            "officers": {"samples": 10, "p50_ms": 30.0, "p99_ms": 45.0}}}
    bench.print_latency({"offered_rate_per_s": 1000, "achieved_rate_per_s": 999.8, "seconds": 20.0, "fact_visible": fv,
                         "output_event": {"p99_ms": 50.0}, "workers": workers})
    out = capsys.readouterr().out
    assert "按聚合：案件 p50 120.0 / p99 400.0 ms（40 个） · 执法人员 p50 30.0 / p99 45.0 ms（10 个）" in out
    assert "工作单元（耗时最多的前 3" in out


def test_server_commands_per_event_leaves_out_what_did_not_run():
    before = {"find": 10, "insert": 5, "update": 7}
    after = {"find": 30, "insert": 5, "update": 17, "delete": 4}
    assert bench.server_commands_per_event(before, after, 20) == {"find": 1.0, "update": 0.5, "delete": 0.2}
