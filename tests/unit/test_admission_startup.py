"""The gateway warns at start when it serves beyond loopback with authentication off."""
import pytest
from nameko import config

from services.gateway.auth import startup_warnings

DEMO = {"WEB_SERVER_ADDRESS": "127.0.0.1:8000", "AMQP_URI": "amqp://guest:guest@127.0.0.1:5672/",
        "HTTP_REQUIRE_TOKEN": False, "INGRESS_REQUIRE_USER_ID": False, "INGRESS_TRUSTED_USERS": ["guest"],
        "INTERNAL_KEY": ""}


def warnings_for(**over):
    with config.patch({**DEMO, **over}, clear=False):
        return startup_warnings()


def test_demo_on_loopback_is_quiet():
    assert warnings_for() == []
    assert warnings_for(WEB_SERVER_ADDRESS="localhost:8000", AMQP_URI="amqp://guest:guest@[::1]:5672/") == []


@pytest.mark.parametrize("address", ["0.0.0.0:8000", "10.1.2.3:8000", "zhifa.example.gov.cn:443", "[::]:8000"])
def test_http_beyond_loopback_without_tokens_warns(address):
    [warning] = warnings_for(WEB_SERVER_ADDRESS=address)
    assert "HTTP_REQUIRE_TOKEN" in warning
    assert warnings_for(WEB_SERVER_ADDRESS=address, HTTP_REQUIRE_TOKEN=True) == []


def test_remote_broker_with_demo_identity_settings_warns_for_each():
    found = " | ".join(warnings_for(AMQP_URI="amqp://guest:guest@mq.example:5672/"))
    for needle in ("INGRESS_REQUIRE_USER_ID", "INGRESS_TRUSTED_USERS includes guest", "as guest", "INTERNAL_KEY"):
        assert needle in found
    assert warnings_for(AMQP_URI="amqp://zhifa:s3cret@mq.example:5672/", INGRESS_REQUIRE_USER_ID=True,
                        INGRESS_TRUSTED_USERS=["zhifa"], INTERNAL_KEY="k" * 32) == []
