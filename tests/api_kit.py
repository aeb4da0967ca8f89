"""Integration-test kit for the HTTP API service: start it beside the gateway (its own port), create
one machine account per role and call routes as that role (bearer tokens).

    kit = start_api(zhifa_config, container_factory)
    kit.get("/api/v1/officers", as_="scjg", dept=SCJG)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pymongo
import requests
from nameko import config as nameko_config

from services.api import accounts
from services.api.service import ApiService
from services.kernel.clock import utcnow
from services.simulator.ports import free_port
from tests.helpers import SCJG, STHJ

# account name -> (role, dept)
ACCOUNTS = {
    "sup": ("supervisor", None),
    "aud": ("auditor", None),
    "ops": ("operator", None),
    "scjg": ("dept_user", SCJG),
    "sthj": ("dept_user", STHJ),
}


@dataclass
class ApiKit:
    base: str
    db: object
    tokens: dict = field(default_factory=dict)

    def headers(self, as_: str | None, extra: dict | None = None) -> dict:
        out = dict(extra or {})
        if as_:
            out["Authorization"] = f"Bearer {self.tokens[as_]}"
        return out

    def get(self, path: str, as_: str | None = "sup", headers: dict | None = None, **params):
        return requests.get(f"{self.base}{path}", params=params, headers=self.headers(as_, headers), timeout=20)

    def post(self, path: str, body=None, as_: str | None = "sup", headers: dict | None = None, **params):
        return requests.post(f"{self.base}{path}", params=params, json=body, headers=self.headers(as_, headers),
                             timeout=20)


def start_declared(container_factory, skip: tuple[str, ...] = ("api",)) -> list[str]:
    """Start every declared service (the entry-point group `zhifa.services`) but those in `skip`."""
    import importlib

    from services.kernel.manifest import manifests

    started = []
    for m in manifests():
        if m.name in skip:
            continue
        module, _, cls = m.service.partition(":")
        container_factory(getattr(importlib.import_module(module), cls)).start()
        started.append(m.name)
    return started


def start_api(zhifa_config: dict, container_factory, **settings) -> ApiKit:
    """Start the API service on its own port (the gateway keeps WEB_SERVER_ADDRESS) with test accounts."""
    address = f"127.0.0.1:{free_port()}"
    patch = nameko_config.patch({"API_WEB_SERVER_ADDRESS": address, "API_COOKIE_SECURE": False,
                                 "API_METRICS_ALLOW": "", **settings},
                                clear=False)
    patch.start()
    zhifa_config["API_WEB_SERVER_ADDRESS"] = address
    container_factory(ApiService).start()
    client = pymongo.MongoClient(zhifa_config["MONGO_URI"], serverSelectionTimeoutMS=3000, tz_aware=True)
    db = client[f"{zhifa_config['DB_PREFIX']}api"]
    kit = ApiKit(f"http://{address}", db)
    for name, (role, dept) in ACCOUNTS.items():
        kit.tokens[name] = accounts.create_user(db, name, role, utcnow(), dept=dept, kind="machine")["token"]
    return kit
