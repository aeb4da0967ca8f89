"""The CPU per event of a latency phase in the bench summary (services/simulator/bench.py): printed when
the phase measured it, left out when it did not (a backlog left undrained, or no process sampler)."""
from services.simulator import bench


def test_a_latency_phase_with_its_cpu_window_prints_the_cpu_per_event_at_that_rate():
    lat = {"cpu": {"window_s": 31.5, "cores": 2, "machine_busy_share": 0.9, "ms_per_event_all": 4.71,
                   "processes": {"mongodb": {"cores": 0.57, "ms_per_event": 1.43},
                                 "penalty": {"cores": 0.38, "ms_per_event": 0.95},
                                 "rabbitmq": {"cores": 0.3, "ms_per_event": 0.75},
                                 "gateway": {"cores": 0.29, "ms_per_event": 0.72},
                                 "personnel": {"cores": 0.09, "ms_per_event": 0.23}}}}
    text = bench.latency_cpu_text(lat)
    assert "此速率下每条事件 CPU 4.71 ms" in text and "整机忙 90%" in text and "31.5 秒" in text
    assert "mongodb 1.43" in text and "gateway 0.72" in text and "personnel" not in text  # the busiest four


def test_a_latency_phase_without_a_cpu_window_prints_nothing_more():
    assert bench.latency_cpu_text({}) == ""
    assert bench.latency_cpu_text({"cpu": {"ms_per_event_all": None}}) == ""


def test_window_cpu_divides_the_window_by_the_events_published():
    before = {"t": 10.0, "busy": 100.0, "cpu": {"penalty": 5.0, "mongodb": 7.0}}
    after = {"t": 20.0, "busy": 118.0, "cpu": {"penalty": 8.0, "mongodb": 12.0}}
    wc = bench.window_cpu(before, after, 2000)
    assert wc["ms_per_event_all"] == 4.0  # 8 CPU seconds over 2,000 events
    assert wc["processes"]["mongodb"]["ms_per_event"] == 2.5 and list(wc["processes"])[0] == "mongodb"
