"""The service processes' garbage-collector settings (services/kernel/gc_tuning.py)."""
import gc

import pytest

from services.kernel import config, gc_tuning


@pytest.fixture
def restored():
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_thresholds_are_set_and_returned(restored):
    assert gc_tuning.tune([12345, 7, 9], freeze=False) == (12345, 7, 9)
    assert gc.get_threshold() == (12345, 7, 9)


def test_no_thresholds_leave_them_as_they_are(restored):
    gc.set_threshold(800, 11, 12)
    assert gc_tuning.tune(None, freeze=False) == (800, 11, 12)
    assert gc_tuning.tune([], freeze=False) == (800, 11, 12)


def test_a_threshold_below_one_is_refused_with_the_setting_named(restored):
    with pytest.raises(ValueError, match="GC_THRESHOLDS"):
        gc_tuning.tune([0, 10, 10], freeze=False)
    for bad in (["many"], 20000, [None]):
        with pytest.raises(ValueError, match="GC_THRESHOLDS must be one to three positive integers"):
            gc_tuning.tune(bad, freeze=False)
    assert gc.get_threshold() == restored  # (nothing set by a refused value)


def test_defaults_raise_the_first_threshold_and_freeze():
    assert config.DEFAULTS["GC_THRESHOLDS"][0] > 700 and config.DEFAULTS["GC_FREEZE"] is True
    assert "GC_THRESHOLDS" in config.ENV_TUNING  # (a bench run can compare settings by env var)
    assert config.load_config(None, {"GC_THRESHOLDS": "[700, 10, 10]"})["GC_THRESHOLDS"] == [700, 10, 10]


def test_freeze_moves_the_live_objects_out_of_the_collectors_view_once(restored, monkeypatch):
    monkeypatch.setattr(gc_tuning, "_frozen", False)
    frozen_before = gc.get_freeze_count()
    try:
        gc_tuning.tune(None, freeze=True)
        after_first = gc.get_freeze_count()
        assert after_first > frozen_before
        keep = [{"n": i} for i in range(1000)]  # noqa: F841 (alive, made after the freeze)
        gc_tuning.tune(None, freeze=True)
        assert gc.get_freeze_count() == after_first  # (once per process)
    finally:
        gc.unfreeze()
