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
        from services.kernel.metrics import register_plugin_host

        container = getattr(self, "container", None)
        register_plugin_host(getattr(container, "service_name", None) or "unbound", self.host)

    def get_dependency(self, worker_ctx):
        return self.host
