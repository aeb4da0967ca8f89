"""Numeric settings are read through services/kernel/config.py's `number` accessors: a value that is not
the number a setting needs is refused with the setting named, never clamped or read as something else."""
import math

import pytest
from nameko import config as nameko_config

from services.kernel import config

HOSTILE = ("abc", "", "0x10", "1e999", "nan", "inf", "-inf", True, False, [5], {"n": 5}, "5; drop", float("nan"),
           float("inf"))


def _refused(key, read, value, what):
    with nameko_config.patch({key: value}, clear=False):
        with pytest.raises(ValueError) as raised:
            read()
    assert str(raised.value).startswith(f"{key} must be {what}"), raised.value


@pytest.mark.parametrize("value", HOSTILE + ("0", 0, -3, "-3", "1.5", 1.5, "600.0"))
def test_a_positive_integer_setting_refuses_what_is_not_one(value):
    _refused("BATCH_MAX", lambda: config.positive_int("BATCH_MAX"), value, "a positive integer")


@pytest.mark.parametrize("value", HOSTILE + ("-1", -1, "0.5"))
def test_a_non_negative_integer_setting_refuses_what_is_not_one(value):
    _refused("PREFETCH_COUNT", lambda: config.non_negative_int("PREFETCH_COUNT", default=0), value,
             "a non-negative integer")


@pytest.mark.parametrize("value", HOSTILE[:-2] + ("0", 0, -1, "-0.5"))
def test_a_duration_refuses_what_is_not_a_number_above_zero(value):
    _refused("OUTBOX_SWEEP_SECONDS", lambda: config.seconds("OUTBOX_SWEEP_SECONDS"), value, "a number > 0")


def test_good_values_are_read_as_yaml_gives_them_and_as_text():
    with nameko_config.patch({"BATCH_MAX": "250", "PREFETCH_COUNT": 0, "OUTBOX_SWEEP_SECONDS": "0.5",
                              "METRICS_PORT": "9105"}, clear=False):
        assert config.positive_int("BATCH_MAX") == 250
        assert config.non_negative_int("PREFETCH_COUNT") == 0
        assert math.isclose(config.seconds("OUTBOX_SWEEP_SECONDS"), 0.5)
        assert config.number("METRICS_PORT", minimum=0, maximum=65535) == 9105
    with nameko_config.patch({"METRICS_PORT": 70000}, clear=False):
        with pytest.raises(ValueError, match="METRICS_PORT must be a non-negative integer <= 65535"):
            config.number("METRICS_PORT", minimum=0, maximum=65535)


def test_an_unset_setting_takes_its_default():
    with nameko_config.patch({"BATCH_MAX": None}, clear=False):
        assert config.positive_int("BATCH_MAX") == config.DEFAULTS["BATCH_MAX"]
    assert config.seconds("NOT_A_SETTING_ANYWHERE", default=15) == 15


@pytest.mark.parametrize("key,read", [
    ("BATCH_MAX", lambda: __import__("services.kernel.messaging", fromlist=["x"]).batch_settings()),
    ("BATCH_WORKERS", lambda: __import__("services.kernel.messaging", fromlist=["x"]).batch_settings()),
    ("BATCH_WAIT_MS", lambda: __import__("services.kernel.messaging", fromlist=["x"]).batch_settings()),
    ("OUTBOX_SWEEP_SECONDS", lambda: __import__("services.kernel.settings", fromlist=["x"]).RunConfig.from_config()),
    ("DEADLINE_SWEEP_SECONDS", lambda: __import__("services.kernel.settings", fromlist=["x"]).RunConfig.from_config()),
    ("FINDINGS_RECOUNT_SECONDS", lambda: __import__("services.kernel.settings", fromlist=["x"]).RunConfig.from_config()),
    ("DEADLINE_SWEEP_SPREAD_SECONDS", lambda: __import__("services.kernel.settings", fromlist=["x"]).RunConfig.from_config()),
    ("PROJECTION_CACHE_ENTRIES", lambda: __import__("services.kernel.projection_cache", fromlist=["x"]).shared_cache()),
    ("PROJECTION_CHANGE_SLOTS", lambda: __import__("services.kernel.projection_cache", fromlist=["x"])._slots()),
    ("PROJECTION_LOG_REUSE_MS", lambda: __import__("services.kernel.projection_cache", fromlist=["x"])._reuse_seconds()),
    ("INGRESS_BATCH_MAX", lambda: __import__("services.gateway.service", fromlist=["x"]).ingress_batch_max()),
])
def test_the_readers_of_the_settings_name_the_setting_they_refuse(key, read):
    with nameko_config.patch({key: "many"}, clear=False):
        with pytest.raises(ValueError, match=f"^{key} must be "):
            read()


def test_every_numeric_setting_is_checked_at_start_and_the_defaults_pass():
    config.check_numbers()  # the defaults (and this test session's settings)
    numeric = {k for k, v in config.DEFAULTS.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert numeric <= set(config.NUMBERS), numeric - set(config.NUMBERS)


def test_the_start_check_names_every_wrong_setting_at_once():
    with nameko_config.patch({"BATCH_MAX": "0", "OUTBOX_SWEEP_SECONDS": "soon", "RETRY_DELAYS_MS": "1000"},
                             clear=False):
        with pytest.raises(ValueError) as raised:
            config.check_numbers()
    message = str(raised.value)
    for key in ("BATCH_MAX must be", "OUTBOX_SWEEP_SECONDS must be", "RETRY_DELAYS_MS must be a list"):
        assert key in message, message


@pytest.mark.parametrize("value", ["1000", [1000, -1], [1000, "x"], [True], [1.5], {"a": 1}])
def test_retry_delays_must_be_a_list_of_non_negative_integers(value):
    with nameko_config.patch({"RETRY_DELAYS_MS": value}, clear=False):
        with pytest.raises(ValueError, match="RETRY_DELAYS_MS must be a list of non-negative integers"):
            config.delays("RETRY_DELAYS_MS")


def test_retry_delays_as_yaml_or_text_numbers_are_read():
    for value, read in (([200, 1000], [200, 1000]), ([], []), (["200", 400.0], [200, 400])):
        with nameko_config.patch({"RETRY_DELAYS_MS": value}, clear=False):
            assert config.delays("RETRY_DELAYS_MS") == read


def test_a_service_process_with_a_wrong_number_stops_at_setup_with_the_setting_named():
    from services.kernel.metrics import Metrics

    metrics = Metrics()
    metrics.container = type("Container", (), {"service_name": "t"})()
    with nameko_config.patch({"PROJECTION_CHANGE_SLOTS": "-2"}, clear=False):
        with pytest.raises(ValueError, match="PROJECTION_CHANGE_SLOTS must be a positive integer, got '-2'"):
            metrics.setup()


BOUNDED = [("CASE_LIST_LAG_MS", 10000, (0, "0", 500, "2.5", 10000)),  # milliseconds, at most 10 s
           ("DEADLINE_SWEEP_SPREAD_SECONDS", 3600, (0, "0", 10, "2.5", 3600))]  # seconds, at most an hour


@pytest.mark.parametrize("key,maximum,goods", BOUNDED)
@pytest.mark.parametrize("value", HOSTILE + ("-1", -1, "10001", 1e12))
def test_a_bounded_number_setting_refuses_what_is_not_one_from_0_to_its_maximum(key, maximum, goods, value):
    for bad in (value, str(maximum + 0.5)):  # (and just above its maximum)
        with nameko_config.patch({key: bad}, clear=False):
            with pytest.raises(ValueError, match=f"^{key} must be a number >= 0 <= {maximum}"):
                config.checked(key)
    for good in goods:
        with nameko_config.patch({key: good}, clear=False):
            assert config.checked(key) == float(good)


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "10001", True, "soon"])
def test_the_projection_log_reuse_is_a_bounded_number_of_milliseconds(value):
    with nameko_config.patch({"PROJECTION_LOG_REUSE_MS": value}, clear=False):
        with pytest.raises(ValueError, match="PROJECTION_LOG_REUSE_MS must be a number >= 0 <= 10000"):
            config.checked("PROJECTION_LOG_REUSE_MS")
    with nameko_config.patch({"PROJECTION_LOG_REUSE_MS": "0"}, clear=False):
        assert config.checked("PROJECTION_LOG_REUSE_MS") == 0


@pytest.mark.parametrize("value", ["", "Local", "k8s", "local ", 1, True, None, ["local"]])
def test_the_suite_health_layout_is_one_of_the_three_or_the_start_check_names_it(value):
    with nameko_config.patch({"SUITE_HEALTH_LAYOUT": value}, clear=False):
        if value is None:  # unset: the default
            assert config.checked("SUITE_HEALTH_LAYOUT") == "local"
            return
        with pytest.raises(ValueError) as raised:
            config.check_numbers()
    assert "SUITE_HEALTH_LAYOUT must be one of local, compose, kubernetes" in str(raised.value), raised.value
