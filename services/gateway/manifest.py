"""Declaration of the gateway (接入网关): the ingress of department events, quarantine, dead letters.

It is HTTP-facing (`POST /api/v1/events`, dead letters, /health, /metrics on one port) and
re-dispatches every admitted event unchanged on `gateway.events`, which the domain services consume.
"""
from services.kernel.manifest import ServiceManifest

MANIFEST = ServiceManifest(
    name="gateway",
    title="接入网关",
    service="services.gateway.service:GatewayService",
    http_facing=True,
    http_port=8000,
    order=0,
    relays_ingress=True,
)
