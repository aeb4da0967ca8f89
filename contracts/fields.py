"""Reusable cerberus field definitions, so every contract bounds sizes the same way."""

DEPT = {"type": "string", "regex": r"^[0-9]{6}-[a-z][a-z0-9_]{1,30}$", "maxlength": 40}
ID = {"type": "string", "regex": r"^[A-Za-z0-9][A-Za-z0-9_\-:/]{0,63}$", "maxlength": 64}
NAME = {"type": "string", "minlength": 1, "maxlength": 100}
TEXT = {"type": "string", "maxlength": 2000}
SHORT = {"type": "string", "maxlength": 200}
# `calendar` (contracts.catalog.ContractValidator): a real date/time with its year in the configured range.
DATE = {"type": "string", "regex": r"^\d{4}-\d{2}-\d{2}$", "calendar": "date"}
DATETIME = {"type": "string", "regex": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$",
            "calendar": "datetime"}
MONEY = {"type": "number", "min": 0, "max": 1_000_000_000_000}
HOURS = {"type": "number", "min": 0, "max": 1000}
CODE_LIST = {"type": "list", "maxlength": 50, "schema": {"type": "string", "maxlength": 64}}


def req(field: dict, **extra) -> dict:
    """A required copy of a field definition."""
    return {**field, "required": True, **extra}


def opt(field: dict, **extra) -> dict:
    """An optional (nullable) copy of a field definition."""
    return {**field, "required": False, "nullable": True, **extra}
