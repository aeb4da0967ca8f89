"""The plugin host: builds one pluggy manager per process and calls hooks so that no plugin can
stop the suite.

There is no import-time manager: each composition root calls `build_plugin_manager()` with the
enabled plugin names from its configuration.

Isolation. pluggy's own `pm.hook.zhifa_x(...)` stops at the first implementation that raises (the
rest are never called), and a hookwrapper only sees that combined outcome, so it cannot bring the
other results back. The host therefore never calls hooks through pluggy's caller: `_results`
iterates `get_hookimpls()` and calls each implementation's function with the keywords it
declares, catching exceptions one implementation at a time. A failure is recorded in
`host.failures` (deduplicated, with a count), logged on the 'zhifa.plugins' logger, and that
plugin's answer is left out. The same applies to a plugin that fails to import or register, to
one implementing a hook that has no spec (found before `check_pending()`), to one returning data
of the wrong shape (e.g. an unknown PenaltySettings key), and to case-rule functions at call time.
Hook wrappers are refused at registration: zhifa hooks return plain data and are merged here.

Order. Results come in pluggy's priority order, lowest first: built-ins, then entry points sorted
by name, then plugins registered directly; `tryfirst`/`trylast` move an implementation as usual.
When merging dictionaries the later (higher-priority) answer wins, so a department plugin
overrides a built-in.
"""
from __future__ import annotations

import copy
import functools
import importlib
import importlib.metadata
import logging
from dataclasses import dataclass, fields
from typing import Any, Callable, Iterable, Mapping

import pluggy

import plugins.hookspecs as hookspecs
from plugins.builtin import BUILTIN_PLUGINS
from services.kernel.manifest import settings_sections
from services.penalty.domain.settings import PenaltySettings

ENTRYPOINT_GROUP = "zhifa.plugins"
NATIONAL = "national"
THRESHOLD_KEYS = ("id", "measure", "threshold", "law", "name")  # plus `bases` and/or `item_codes`
PENALTY_FIELDS = frozenset(f.name for f in fields(PenaltySettings))

logger = logging.getLogger("zhifa.plugins")


class PluginError(Exception):
    """A plugin problem; the message is Chinese."""


class PluginDataError(PluginError):
    """A hook answered with data of the wrong shape."""


class UnknownPresetError(PluginError, LookupError):
    """No plugin provides a jurisdiction preset of that name."""


@dataclass
class PluginFailure:
    """One isolated plugin failure: which plugin, where (hook or 'load'), what, how many times."""

    name: str
    error: str
    hook: str | None = None
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "hook": self.hook, "error": self.error, "count": self.count}


@dataclass
class _Origin:
    source: str
    distribution: str | None = None


class PluginHost:
    """A pluggy manager plus the guarded, merged answers the services ask for."""

    def __init__(self, pm: pluggy.PluginManager):
        self.pm = pm
        self.failures: list[PluginFailure] = []
        self._failure_index: dict[tuple[str, str | None, str], PluginFailure] = {}
        self._origins: dict[str, _Origin] = {}
        self._reported_presets: set[str] = set()
        self._rules_cache: dict[tuple[str, str], list] = {}
        self._thresholds_cache: dict[str, list] = {}

    # -- registration -------------------------------------------------------------------------

    def record_failure(self, name: str, error: BaseException | str, hook: str | None = None) -> PluginFailure:
        """Remember and log a failure; the same failure again only increments its count."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        key = (name, hook, text)
        known = self._failure_index.get(key)
        if known is not None:
            known.count += 1
            logger.warning("插件 %s 再次失败（%s，第 %d 次）：%s", name, hook or "加载", known.count, text)
            return known
        failure = PluginFailure(name=name, error=text, hook=hook)
        self._failure_index[key] = failure
        self.failures.append(failure)
        exc_info = error if isinstance(error, BaseException) else None
        logger.error("插件 %s 已隔离（%s）：%s", name, hook or "加载", text, exc_info=exc_info)
        return failure

    def register(self, plugin: object, name: str, source: str = "direct", distribution: str | None = None) -> bool:
        """Register one plugin object; on any problem record it and return False."""
        if self.pm.has_plugin(name) or self.pm.is_registered(plugin):
            self.record_failure(name, PluginError(f"插件名称“{name}”或插件对象已被注册，重复的插件未加载"))
            return False
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # PluginValidationError, or anything a plugin's attributes raise
            self.record_failure(name, exc)
            return False
        wrappers = sorted(
            caller.name
            for caller in self.pm.get_hookcallers(plugin) or ()
            for impl in caller.get_hookimpls()
            if impl.plugin is plugin and (impl.hookwrapper or impl.wrapper)
        )
        if wrappers:
            self.pm.unregister(plugin)
            self.record_failure(name, PluginError(f"不支持钩子包装器（{', '.join(wrappers)}），插件未加载"))
            return False
        self._origins[name] = _Origin(source, distribution)
        self._rules_cache.clear()
        self._thresholds_cache.clear()
        return True

    def load(self, name: str, module_path: str, source: str) -> bool:
        """Import a module by dotted path and register it."""
        try:
            module = importlib.import_module(module_path)
        except Exception as exc:
            self.record_failure(name, exc)
            return False
        return self.register(module, name, source=source)

    def load_entrypoints(self, enabled: Iterable[str] | None = None) -> None:
        """Register plugins from the 'zhifa.plugins' entry-point group, only `enabled` ones if given."""
        wanted = None if enabled is None else set(enabled)
        found: set[str] = set()
        for ep in sorted(importlib.metadata.entry_points(group=ENTRYPOINT_GROUP), key=lambda e: (e.name, e.value)):
            found.add(ep.name)
            if wanted is not None and ep.name not in wanted:
                logger.info("插件 %s 未在配置中启用，已跳过", ep.name)
                continue
            dist = ep.dist
            distribution = f"{dist.name} {dist.version}" if dist is not None else None
            try:
                plugin = ep.load()
            except Exception as exc:
                self.record_failure(ep.name, exc)
                continue
            self.register(plugin, ep.name, source="entrypoint", distribution=distribution)
        builtin_names = {name for name, _ in BUILTIN_PLUGINS}
        for name in sorted((wanted or set()) - found - builtin_names):
            self.record_failure(name, PluginError(f"配置中启用了插件“{name}”，但未找到对应的入口点"))

    def check_pending(self) -> None:
        """Isolate plugins that implement hooks with no spec, then let pluggy confirm the rest."""
        for hook_name, caller in list(vars(self.pm.hook).items()):
            if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook or not self.pm.is_registered(impl.plugin):
                    continue
                self.pm.unregister(impl.plugin)
                self._origins.pop(impl.plugin_name, None)
                self.record_failure(impl.plugin_name, PluginError(f"未知的钩子 {hook_name}（没有对应的钩子规范），插件未加载"), hook=hook_name)
        self.pm.check_pending()

    # -- guarded calls ------------------------------------------------------------------------

    def _results(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """(plugin name, answer) for every implementation that answered; see the module docstring."""
        caller: pluggy.HookCaller = getattr(self.pm.hook, hook_name)
        answers: list[tuple[str, Any]] = []
        for impl in caller.get_hookimpls():
            arguments = {arg: kwargs[arg] for arg in impl.argnames}
            try:
                result = impl.function(**arguments)
            except Exception as exc:
                self.record_failure(impl.plugin_name, exc, hook=hook_name)
                continue
            if result is not None:
                answers.append((impl.plugin_name, result))
        return answers

    def _accepted(self, hook_name: str, check: Callable[[Any], None], **kwargs: Any) -> list[tuple[str, Any]]:
        """Like `_results`, leaving out (and recording) answers that `check` rejects."""
        accepted = []
        for plugin_name, result in self._results(hook_name, **kwargs):
            try:
                check(result)
            except PluginDataError as exc:
                self.record_failure(plugin_name, exc, hook=hook_name)
                continue
            accepted.append((plugin_name, result))
        return accepted

    # -- what the services ask for ------------------------------------------------------------

    def presets(self) -> dict[str, dict[str, dict]]:
        """Every jurisdiction preset, each already merged over 'national'."""
        raw: dict[str, dict[str, dict]] = {}
        for _, answer in self._accepted("zhifa_presets", _check_presets):
            for preset_name, sections in answer.items():
                _merge_sections(raw.setdefault(preset_name, {}), sections)
        base = raw.get(NATIONAL, {})
        resolved = {}
        for preset_name, sections in raw.items():
            merged: dict[str, dict] = {}
            _merge_sections(merged, base)
            _merge_sections(merged, sections)
            resolved[preset_name] = merged
        self._check_coherence(resolved)
        return resolved

    def _check_coherence(self, resolved: Mapping[str, Mapping[str, Mapping]]) -> None:
        """A preset that mixes numbers of different sources is recorded as its plugin's failure (it
        is still served: refusing it would leave a deployment without numbers)."""
        from plugins.builtin.presets import coherence_problems

        for preset_name, sections in resolved.items():
            for problem in coherence_problems(preset_name, sections):
                if problem in self._reported_presets:
                    continue
                self._reported_presets.add(problem)
                owner = next((n for n, answer in self._results("zhifa_presets") if preset_name in answer), "builtin.presets")
                self.record_failure(owner, PluginDataError(problem), hook="zhifa_presets")

    def preset(self, name: str) -> dict[str, dict]:
        """One preset by name; UnknownPresetError if no plugin provides it."""
        presets = self.presets()
        if name not in presets:
            raise UnknownPresetError(f"未知的辖区预设“{name}”，可用的预设：{'、'.join(sorted(presets)) or '无'}")
        return presets[name]

    def preset_in_effect(self, name: str) -> dict[str, Any]:
        """The preset `name` as the API and /health show it: name, the sources it adopts (built-in
        presets; None for a plugin's own), every number it sets, and any incoherence found."""
        from plugins.builtin.presets import coherence_problems, preset_in_effect

        sections = self.preset(name)
        return {**preset_in_effect(name, sections), "problems": coherence_problems(name, sections)}

    def dept_settings(self, dept: str) -> dict[str, dict]:
        """The merged per-department overrides for `dept` ({} when no plugin has any)."""
        merged: dict[str, dict] = {}
        for _, answer in self._accepted("zhifa_dept_settings", _check_sections, dept=dept):
            _merge_sections(merged, answer)
        return merged

    def penalty_settings(self, dept: str, preset_name: str = NATIONAL) -> PenaltySettings:
        """Law defaults, then the preset's "penalty" section, then the department's overrides."""
        preset = self.preset(preset_name)
        settings = PenaltySettings.from_mapping(**dict(preset.get("penalty", {})))
        return PenaltySettings.from_mapping(settings, **dict(self.dept_settings(dept).get("penalty", {})))

    def crime_thresholds(self, dept: str) -> list[dict[str, Any]]:
        """Every plugin's crime thresholds for `dept`, in plugin order: copied from the plugins' answers
        once and cached per dept until another plugin is registered, as `rules` is (penalty asks once per
        unit of work: the plugin calls, checks and copies were 3-6% of its CPU). The list is shared:
        callers read it and never modify it. An answer during which a plugin failed is not cached, so
        the failing plugin is asked (and its failure counted) again each time."""
        cached = self._thresholds_cache.get(dept)
        if cached is None:
            failures, cached = self._failures_recorded(), []
            for _, answer in self._accepted("zhifa_crime_thresholds", _check_thresholds, dept=dept):
                cached.extend(copy.deepcopy(list(answer)))
            if self._failures_recorded() == failures:
                self._thresholds_cache[dept] = cached
        return cached

    def _failures_recorded(self) -> int:
        """Every failure recorded so far, repeats included."""
        return sum(f.count for f in self.failures)

    def case_rules(self, dept: str) -> list[tuple[str, Callable[..., list]]]:
        """(rule_id, fn) for `dept`; each fn is guarded so a raising rule yields [] and is recorded."""
        rules: list[tuple[str, Callable[..., list]]] = []
        seen: set[str] = set()
        for plugin_name, answer in self._accepted("zhifa_case_rules", _check_rules, dept=dept):
            for rule_id, fn in answer:
                if rule_id in seen:
                    self.record_failure(plugin_name, PluginDataError(f"规则编号 {rule_id} 与其他插件重复，已忽略"), hook="zhifa_case_rules")
                    continue
                seen.add(rule_id)
                rules.append((rule_id, self._guard_rule(plugin_name, rule_id, fn)))
        return rules

    def rules(self, service: str, dept: str | None) -> list[tuple[str, Callable[..., Any]]]:
        """(rule_id, fn) the `service` evaluates for `dept`: the built-in plugin's rules, then each
        department plugin's answer to `zhifa_rules` in plugin order (a known id replaces the rule,
        `(id, None)` switches it off), then — for penalty — `zhifa_case_rules`. Every fn is guarded:
        one that raises yields nothing and is recorded as its plugin's failure. Cached per
        (service, dept) until another plugin is registered."""
        key = (service, dept or "")
        cached = self._rules_cache.get(key)
        if cached is not None:
            return cached
        merged: dict[str, tuple[str, Callable[..., Any]]] = {}
        for plugin_name, answer in self._accepted("zhifa_rules", _check_service_rules, service=service, dept=dept or ""):
            for rule_id, fn in answer:
                if fn is None:
                    merged.pop(rule_id, None)
                else:
                    merged[rule_id] = (plugin_name, fn)
        out = [(rule_id, self._guard_rule(plugin_name, rule_id, fn, keep=service == "registry"))
               for rule_id, (plugin_name, fn) in merged.items()]
        if service == "penalty" and dept:
            out += [(rule_id, fn) for rule_id, fn in self.case_rules(dept) if rule_id not in merged]
        self._rules_cache[key] = out
        return out

    def failure_report(self) -> dict[str, Any]:
        """The isolated plugin failures as /health and metrics read them: a count and each failure
        (plugin, hook or 'load', error, how many times)."""
        return {"count": len(self.failures), "occurrences": sum(f.count for f in self.failures),
                "failures": [f.to_dict() for f in self.failures]}

    def _guard_rule(self, plugin_name: str, rule_id: str, fn: Callable[..., Any], keep: bool = False) -> Callable[..., Any]:
        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                answer = fn(*args, **kwargs)
                return answer if keep else list(answer or [])
            except Exception as exc:
                self.record_failure(plugin_name, exc, hook=f"rule:{rule_id}")
                return None if keep else []

        return guarded

    def document_templates(self) -> dict[str, dict[str, str]]:
        """{doc_type: {"title", "body"}}; a later plugin may replace a built-in template."""
        merged: dict[str, dict[str, str]] = {}
        for _, answer in self._accepted("zhifa_document_templates", _check_templates):
            merged.update(copy.deepcopy(dict(answer)))
        return merged

    def document_files(self, dept: str) -> dict[str, tuple[str, str]]:
        """{doc_type: (plugin name, DOCX path)} for `dept`; a later plugin replaces an earlier one."""
        merged: dict[str, tuple[str, str]] = {}
        for plugin_name, answer in self._accepted("zhifa_document_files", _check_document_files, dept=dept):
            merged.update({kind: (plugin_name, str(path)) for kind, path in answer.items()})
        return merged

    def document_number_prefix(self, dept: str, kind: str, subject: Mapping[str, Any] | None = None) -> str | None:
        """The highest-priority plugin's 文号 part for (dept, kind) and the document's `subject` (a copy:
        a plugin cannot change what the document is made from), or None."""
        answers = self._accepted("zhifa_document_number_prefix", _check_prefix, dept=dept, kind=kind,
                                 subject=copy.deepcopy(subject))
        return answers[-1][1] if answers else None

    def payload_extensions(self) -> dict[str, dict[str, dict]]:
        """{event_type: {field: cerberus rule}}, merged over all plugins."""
        merged: dict[str, dict[str, dict]] = {}
        for _, answer in self._accepted("zhifa_payload_extensions", _check_extensions):
            for event_type, extra in answer.items():
                merged.setdefault(event_type, {}).update(copy.deepcopy(dict(extra)))
        return merged

    def plugins(self) -> list[dict[str, Any]]:
        """Registered plugins for the console: name, source, distribution, hooks implemented."""
        listing = []
        for name, plugin in self.pm.list_name_plugin():
            origin = self._origins.get(name, _Origin("direct"))
            hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ())
            listing.append({"name": name, "source": origin.source, "distribution": origin.distribution, "hooks": hooks})
        return listing


def build_plugin_manager(enabled: list[str] | None = None, load_entrypoints: bool = True) -> PluginHost:
    """The one way to get a plugin host: built-ins always, entry points (only `enabled` if given)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm)
    for name, module_path in BUILTIN_PLUGINS:
        host.load(name, module_path, source="builtin")
    if load_entrypoints:
        host.load_entrypoints(enabled)
    host.check_pending()
    return host


# -- shape checks (a wrong answer is that plugin's failure, not everyone's) -----------------------

def _merge_sections(target: dict[str, dict], sections: Mapping[str, Mapping]) -> None:
    for section, values in sections.items():
        target.setdefault(section, {}).update(copy.deepcopy(dict(values)))


def _check_sections(sections: Any) -> None:
    if not isinstance(sections, Mapping):
        raise PluginDataError(f"设置必须是按分组（{'/'.join(settings_sections())}）组织的字典")
    unknown = sorted(set(sections) - set(settings_sections()))  # one section per declared service
    if unknown:
        raise PluginDataError(f"未知的设置分组：{'、'.join(map(str, unknown))}")
    for section, values in sections.items():
        if not isinstance(values, Mapping):
            raise PluginDataError(f"设置分组 {section} 必须是字典")
    unknown_penalty = sorted(set(sections.get("penalty", {})) - PENALTY_FIELDS)
    if unknown_penalty:
        raise PluginDataError(f"未知的处罚设置项：{'、'.join(map(str, unknown_penalty))}")


def _check_presets(answer: Any) -> None:
    if not isinstance(answer, Mapping):
        raise PluginDataError("辖区预设必须是 {名称: 设置} 字典")
    for preset_name, sections in answer.items():
        try:
            _check_sections(sections)
        except PluginDataError as exc:
            raise PluginDataError(f"辖区预设“{preset_name}”：{exc}") from None


def _check_thresholds(answer: Any) -> None:
    if not isinstance(answer, (list, tuple)):
        raise PluginDataError("入罪标准必须是列表")
    for item in answer:
        missing = [k for k in THRESHOLD_KEYS if not isinstance(item, Mapping) or k not in item]
        if not missing and "bases" not in item and "item_codes" not in item:
            missing = ["bases（执法依据：法律及条款）"]
        if missing:
            raise PluginDataError(f"入罪标准缺少字段：{'、'.join(missing)}")
        for basis in item.get("bases") or ():
            if not (isinstance(basis, Mapping) and isinstance(basis.get("law"), str) and basis.get("law")
                    and isinstance(basis.get("article"), str) and basis.get("article")):
                raise PluginDataError(f"入罪标准 {item.get('id')} 的 bases 每项须有 law 与 article")


def _check_rules(answer: Any) -> None:
    if not isinstance(answer, (list, tuple)):
        raise PluginDataError("案件规则必须是 (规则编号, 函数) 列表")
    for item in answer:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) and callable(item[1])):
            raise PluginDataError(f"案件规则格式错误：{item!r}")


def _check_service_rules(answer: Any) -> None:
    if not isinstance(answer, (list, tuple)):
        raise PluginDataError("规则必须是 (规则编号, 函数或 None) 列表")
    for item in answer:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                and (item[1] is None or callable(item[1]))):
            raise PluginDataError(f"规则格式错误：{item!r}")


def _check_templates(answer: Any) -> None:
    if not isinstance(answer, Mapping):
        raise PluginDataError("文书模板必须是 {文书类型: 模板} 字典")
    for doc_type, template in answer.items():
        if not (isinstance(template, Mapping) and isinstance(template.get("title"), str) and isinstance(template.get("body"), str)):
            raise PluginDataError(f"文书模板 {doc_type} 必须包含字符串 title 和 body")


def _check_document_files(answer: Any) -> None:
    if not isinstance(answer, Mapping) or not all(isinstance(k, str) and isinstance(v, str) and v.endswith(".docx")
                                                  for k, v in answer.items()):
        raise PluginDataError("文书模板文件必须是 {文书类型: .docx 文件路径} 字典")


def _check_prefix(answer: Any) -> None:
    if not isinstance(answer, str) or not 1 <= len(answer) <= 12 or any(c in answer for c in "〔〕{}"):
        raise PluginDataError("文号代字必须是 1–12 个字符的字符串（不含〔〕和花括号）")


def _check_extensions(answer: Any) -> None:
    if not isinstance(answer, Mapping) or not all(isinstance(v, Mapping) for v in answer.values()):
        raise PluginDataError("报文扩展字段必须是 {事件类型: {字段: 规则}} 字典")
