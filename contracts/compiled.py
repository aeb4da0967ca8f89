"""A contract's cerberus schema compiled once into plain-Python checks: a fast "surely valid".

`compile_schema(schema, calendar)` returns a function `document -> bool` that answers True only when
the catalog's cerberus validator (`ContractValidator` with `allow_unknown=False`, `normalize=False`)
would accept the document too. False means "not sure": the caller asks cerberus, which gives the
verdict and names every field and rule. So the compiled checks never decide a rejection and never
word an error; they only spare the common, valid event the walk through cerberus (a quarter of the
gateway's CPU, sixth session's profile).

It models exactly the rules the contracts use, with cerberus 1.3's semantics:
`type` (string, integer without bool, number without bool, boolean, dict, list), `required`,
`nullable` (None passes a nullable field and skips its other rules), `regex` (`re.match` with
cerberus's appended `$`), `minlength`/`maxlength` (len of str, list, dict), `min`/`max` (a
comparison that raises TypeError is no violation), `allowed` (each item of a list or dict),
`schema` (rules of a dict's fields or of a list's items), `keysrules`, `valuesrules`, `excludes`
(with the required-relief cerberus gives), `calendar` (the catalog's rule, passed in). Values must
have the exact types `json.loads` produces; a rule, a type or a value of any other kind makes the
check answer False for every document, so a schema it does not model always goes to cerberus.
`tests/unit/test_contracts_compiled.py` compares its verdicts with cerberus's on every contract.
"""
from __future__ import annotations

import re
from typing import Any, Callable

Check = Callable[[Any], bool]

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),  # exact types: bool is not an int here (ContractValidator excludes it too)
    "number": (int, float),
    "boolean": (bool,),
    "dict": (dict,),
    "list": (list,),
}
_SIZED = (str, list, dict)
_CONTAINERS = (list, dict)
# Rules of a field this module models; `required` and `excludes` are checked by the enclosing mapping.
_MODELLED = frozenset({"type", "required", "nullable", "regex", "minlength", "maxlength", "min", "max",
                       "allowed", "schema", "keysrules", "valuesrules", "excludes", "calendar", "meta"})


def _never(_value: Any) -> bool:
    return False


def _regex(pattern: str) -> Check:
    if not pattern.endswith("$"):  # what cerberus does before matching
        pattern += "$"
    match = re.compile(pattern).match
    return lambda v: type(v) is not str or match(v) is not None


def _maxlength(limit: int) -> Check:
    return lambda v: type(v) not in _SIZED or len(v) <= limit


def _minlength(limit: int) -> Check:
    return lambda v: type(v) not in _SIZED or len(v) >= limit


def _bound(limit: Any, upper: bool) -> Check:
    def check(v: Any) -> bool:
        try:
            return not (v > limit if upper else v < limit)
        except TypeError:  # cerberus: no verdict on values that do not compare
            return True
    return check


def _allowed(values: Any) -> Check:
    if not isinstance(values, (list, tuple)):
        return _never
    values = list(values)
    strings = frozenset(values) if all(type(x) is str for x in values) else None

    def check(v: Any) -> bool:
        if type(v) is str:
            return v in strings if strings is not None else v in values
        if type(v) in _CONTAINERS:
            return all(x in values for x in v)
        return v in values
    return check


def _field(rules: Any, calendar: Callable[[str, str], bool]) -> Check:
    """The checks of one field's rules; `_never` for anything not modelled."""
    if not isinstance(rules, dict) or not rules.keys() <= _MODELLED:
        return _never
    kind = rules.get("type")
    if not isinstance(kind, str) or kind not in _TYPES:
        return _never
    types = _TYPES[kind]
    nullable = rules.get("nullable", False)
    if not isinstance(nullable, bool):
        return _never
    checks: list[Check] = []
    for rule, arg in rules.items():
        if rule == "regex":
            if not isinstance(arg, str):
                return _never
            checks.append(_regex(arg))
        elif rule in ("maxlength", "minlength"):
            if type(arg) is not int:
                return _never
            checks.append(_maxlength(arg) if rule == "maxlength" else _minlength(arg))
        elif rule in ("max", "min"):
            if type(arg) not in (int, float):
                return _never
            checks.append(_bound(arg, upper=rule == "max"))
        elif rule == "allowed":
            checks.append(_allowed(arg))
        elif rule == "schema":
            checks.append(_nested(arg, calendar))
        elif rule == "keysrules":
            keys = _field(arg, calendar)
            checks.append(lambda v, keys=keys: type(v) is not dict or all(map(keys, v)))
        elif rule == "valuesrules":
            values = _field(arg, calendar)
            checks.append(lambda v, values=values: type(v) is not dict or all(map(values, v.values())))
        elif rule == "calendar":
            if arg not in ("date", "datetime"):
                return _never
            checks.append(lambda v, arg=arg: type(v) is not str or calendar(arg, v))
        elif rule == "excludes":
            if not isinstance(arg, (str, list)):
                return _never
    def check(v: Any) -> bool:
        if v is None:
            return nullable  # cerberus drops every other rule of a None value
        if type(v) not in types:
            return False
        for c in checks:
            if not c(v):
                return False
        return True
    return check


def _nested(schema: Any, calendar: Callable[[str, str], bool]) -> Check:
    """cerberus's `schema` rule: a dict's field rules, or the rules of each item of a list."""
    as_mapping = _mapping(schema, calendar)
    as_items = _field(schema, calendar)

    def check(v: Any) -> bool:
        if type(v) is dict:
            return as_mapping(v)
        return type(v) is not list or all(map(as_items, v))
    return check


def _mapping(schema: Any, calendar: Callable[[str, str], bool]) -> Check:
    """A document against field rules, unknown fields refused, required fields present."""
    if not isinstance(schema, dict) or not all(isinstance(r, dict) for r in schema.values()):
        return _never
    fields = {name: _field(rules, calendar) for name, rules in schema.items()}
    required = frozenset(name for name, rules in schema.items() if rules.get("required") is True)
    excludes: dict[str, tuple[str, ...]] = {}
    for name, rules in schema.items():
        if "excludes" in rules:
            arg = rules["excludes"]
            excludes[name] = (arg,) if isinstance(arg, str) else tuple(arg)
    get = fields.get

    def check(doc: Any) -> bool:
        if type(doc) is not dict:
            return False
        for key, value in doc.items():
            field = get(key)
            if field is None or not field(value):
                return False
        if excludes:
            relieved: set[str] = set()
            for name, others in excludes.items():
                if name not in doc:
                    continue
                if any(o in doc for o in others):
                    return False
                # a required field present (and not None) relieves itself and what it excludes
                if name in required and doc[name] is not None:
                    relieved.add(name)
                    relieved.update(o for o in others if o in schema)
            return required - relieved <= doc.keys()
        return required <= doc.keys()
    return check


def compile_schema(schema: dict[str, Any], calendar: Callable[[str, str], bool]) -> Check:
    """`document -> True` only if cerberus accepts it under `schema` (allow_unknown=False).

    `calendar(kind, text)` is the catalog's `calendar` rule: True when `text` passes it."""
    return _mapping(schema, calendar)
