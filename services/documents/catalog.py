"""Which DOCX template a department's document uses, and where it came from.

Order (first found wins):
1. the county's override directory (`DOCUMENTS_TEMPLATE_DIR`): `<dir>/<dept>/<kind>.docx` for one
   department, then `<dir>/<kind>.docx` for every department — a clerk drops an edited file there,
   no code, no restart (read on every render);
2. a department plugin's template (hook `zhifa_document_files(dept)` -> {kind: path});
3. the built-in template shipped in services/documents/templates/ (scripts/make_templates.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from services.documents.render import TEMPLATES_DIR

KIND_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class TemplateFile:
    kind: str
    data: bytes
    source: str          # county | plugin:<name> | builtin
    path: str


def resolve(kind: str, dept: str, plugin_files: Mapping[str, tuple[str, str]], override_dir: str | None) -> TemplateFile | None:
    """The template of `kind` for `dept`; `plugin_files` is {kind: (plugin name, path)}."""
    if not KIND_NAME.fullmatch(kind) or "/" in dept or ".." in dept:
        return None
    candidates: list[tuple[str, Path]] = []
    if override_dir:
        base = Path(override_dir)
        candidates += [("county", base / dept / f"{kind}.docx"), ("county", base / f"{kind}.docx")]
    if kind in plugin_files:
        name, path = plugin_files[kind]
        candidates.append((f"plugin:{name}", Path(path)))
    candidates.append(("builtin", TEMPLATES_DIR / f"{kind}.docx"))
    for source, path in candidates:
        if path.is_file():
            return TemplateFile(kind, path.read_bytes(), source, str(path))
    return None
