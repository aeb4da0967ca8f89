"""A base for every domain's settings: frozen dataclasses of numbers built `from_mapping`.

Presets and department plugins override settings by field name (or a declared alias). Unknown
names are an error, never silently ignored; list values become tuples for `TUPLE_FIELDS`;
"MM-DD" values become (month, day) for `MONTH_DAY_FIELDS`; `check()` validates the result.
"""
from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, ClassVar, Mapping, TypeVar

from services.common.chinatime import parse_month_day

S = TypeVar("S", bound="SettingsBase")


class SettingsBase:
    """Mixin for frozen dataclasses; subclasses declare their fields and the class variables below."""

    SECTION: ClassVar[str] = ""                          # the preset/plugin section it reads
    ALIASES: ClassVar[Mapping[str, str]] = {}            # preset name -> field name
    TUPLE_FIELDS: ClassVar[frozenset[str]] = frozenset()
    MONTH_DAY_FIELDS: ClassVar[frozenset[str]] = frozenset()  # stored as (m, d); None allowed

    @classmethod
    def field_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls))  # type: ignore[arg-type]

    @classmethod
    def from_mapping(cls: type[S], base: S | None = None, **overrides: Any) -> S:
        """Apply overrides by field name or alias; unknown names are an error."""
        values = {cls.ALIASES.get(k, k): v for k, v in overrides.items()}
        unknown = set(values) - cls.field_names()
        if unknown:
            raise ValueError(f"unknown {cls.SECTION or cls.__name__} settings: {sorted(unknown)}")
        for name in cls.TUPLE_FIELDS & set(values):
            values[name] = tuple(values[name])
        for name in cls.MONTH_DAY_FIELDS & set(values):
            if values[name] is not None:
                values[name] = parse_month_day(values[name], name)
        out = replace(base or cls(), **values)  # type: ignore[type-var]
        out.check()
        return out

    def check(self) -> None:
        """Raise ValueError when the combination of numbers is impossible."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]
