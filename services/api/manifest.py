"""Declaration of the HTTP API service (对外接口): the one HTTP API for people, with accounts and roles.

It keeps no aggregates and consumes no events: it answers HTTP by calling the declared queries and
commands of the other services over RPC (services/api/routes.py builds its routes from `manifests()`).
"""
from services.kernel.manifest import ServiceManifest

MANIFEST = ServiceManifest(
    name="api",
    title="对外接口（账户、角色、审计）",
    service="services.api.service:ApiService",
    http_facing=True,
    http_port=8080,
    order=90,
)
