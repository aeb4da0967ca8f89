"""Configuration read once, at container start: the service's run settings and its domain settings.

- `RunConfig` (dependency `conf`): the knobs the kernel reads (jurisdiction preset, sweep
  intervals), taken from nameko's config when the container is set up — never per message.
- `DeptSettings` (dependency `settings`): the service's domain settings (its manifest's
  `settings` class) for one department: law defaults, then the jurisdiction preset's section,
  then the department plugins' overrides (`zhifa_dept_settings`). Built once per department and
  kept; a department override a settings class refuses is recorded as that plugin's failure
  (plugin host `failures`, /health, metrics) and the department falls back to the preset.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

from nameko.extensions import DependencyProvider

from services.kernel import config

log = logging.getLogger("zhifa.settings")


@dataclass(frozen=True)
class RunConfig:
    preset: str
    outbox_sweep_seconds: float
    deadline_sweep_seconds: float
    recount_seconds: float
    deadline_spread_seconds: float

    @classmethod
    def from_config(cls) -> "RunConfig":
        return cls(preset=str(config.get("JURISDICTION_PRESET")),
                   outbox_sweep_seconds=config.checked("OUTBOX_SWEEP_SECONDS"),
                   deadline_sweep_seconds=config.checked("DEADLINE_SWEEP_SECONDS"),
                   recount_seconds=config.checked("FINDINGS_RECOUNT_SECONDS"),
                   deadline_spread_seconds=config.checked("DEADLINE_SWEEP_SPREAD_SECONDS"))


class Conf(DependencyProvider):
    """Injects the RunConfig read at container setup."""

    def setup(self):
        self.value = RunConfig.from_config()

    def get_dependency(self, worker_ctx):
        return self.value


class DeptSettings:
    """`for_dept(dept)` -> the settings object of `section` for that department (cached)."""

    def __init__(self, host, section: str, settings_cls: Callable[..., Any], preset: str):
        self.host = host
        self.section = section
        self.cls = settings_cls
        self.preset = preset
        self.base = settings_cls.from_mapping(**dict(host.preset(preset).get(section, {})))
        self._per_dept: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, declared, host, preset: str | None = None) -> "DeptSettings":
        """The resolver of a declared service (tests: pass it to worker_factory as `settings`)."""
        return cls(host, declared.settings_section, declared.settings,
                   preset or str(config.get("JURISDICTION_PRESET")))

    def for_dept(self, dept: str | None) -> Any:
        if not dept:
            return self.base
        found = self._per_dept.get(dept)
        if found is None:
            found = self._resolve(dept)
            with self._lock:
                self._per_dept[dept] = found
        return found

    def _resolve(self, dept: str) -> Any:
        overrides = dict(self.host.dept_settings(dept).get(self.section, {}))
        if not overrides:
            return self.base
        try:
            return self.cls.from_mapping(self.base, **overrides)
        except (TypeError, ValueError) as exc:
            self.host.record_failure(f"dept_settings:{dept}", exc, hook="zhifa_dept_settings")
            return self.base


class Settings(DependencyProvider):
    """Injects the service's DeptSettings, built from its manifest, the preset and the plugin host.

    The preset name is read at setup; the resolver is built on first use (after every provider's
    setup, so the container's plugin host exists) and kept for the container's life.
    """

    def setup(self):
        self.preset = str(config.get("JURISDICTION_PRESET"))
        self.value: DeptSettings | None = None

    def _host(self):
        """The container's plugin host (its `Plugins` dependency), or one of its own if it has none."""
        from services.kernel.plugins import Plugins

        found = next((dep for dep in self.container.dependencies if isinstance(dep, Plugins)), None)
        if found is None:
            found = Plugins()
            found.setup()
        return found.host

    def get_dependency(self, worker_ctx):
        if self.value is None:
            declared = self.container.service_cls.manifest
            if declared.settings is None:
                return None
            self.value = DeptSettings(self._host(), declared.settings_section, declared.settings, self.preset)
        return self.value
