"""What the bench records of the settings its suite runs with (services/simulator/bench.py)."""
from services.simulator.bench import settings_from_environment


def test_the_settings_the_environment_overrides_are_recorded_and_secrets_are_not():
    env = {"GATEWAY_BUNDLE_MAX": "1", "BATCH_MAX": "300", "PREFETCH_COUNT": "40", "AGGREGATE_CACHE_MB": "",
           "INTERNAL_KEY": "s3cret", "AMQP_URI": "amqp://u:p@h/", "MONGO_URI": "mongodb://u:p@h/",
           "DB_PREFIX": "zhifa_", "PATH": "/bin", "NOT_A_SETTING": "x"}
    assert settings_from_environment(env) == {"BATCH_MAX": "300", "GATEWAY_BUNDLE_MAX": "1", "PREFETCH_COUNT": "40"}
    assert settings_from_environment({}) == {}
