"""The plugin host as a DependencyProvider: built once per container from configuration."""
from __future__ import annotations

from nameko.extensions import DependencyProvider

from services.kernel import config


class Plugins(DependencyProvider):
    """Injects the PluginHost (plugins/host.py); enabled plugins come from PLUGINS_ENABLED."""

    def setup(self):
        from plugins.host import build_plugin_manager

        enabled = config.get("PLUGINS_ENABLED")
        if isinstance(enabled, str):
            enabled = [p.strip() for p in enabled.split(",") if p.strip()]
        self.host = build_plugin_manager(enabled=enabled)
        from services.kernel.metrics import register_plugin_host, register_report

        container = getattr(self, "container", None)
        register_plugin_host(getattr(container, "service_name", None) or "unbound", self.host)
        host, name = self.host, str(config.get("JURISDICTION_PRESET"))

        def preset_report() -> dict:
            """/health shows the jurisdiction preset in effect: its name, the sources it adopts and
            any incoherence (every number is at GET /api/v1/preset)."""
            shown = host.preset_in_effect(name)
            return {k: shown.get(k) for k in ("name", "sources", "problems") if k in shown}

        register_report("preset", preset_report)

    def get_dependency(self, worker_ctx):
        return self.host
