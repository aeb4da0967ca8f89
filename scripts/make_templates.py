#!/usr/bin/env python3
"""Generate the built-in DOCX templates (文书模板) from the plain-text templates.

    .venv/bin/python scripts/make_templates.py            # write services/documents/templates/*.docx
    .venv/bin/python scripts/make_templates.py --check    # exit 1 if a shipped file is out of date

The text of every document lives once, in plugins/builtin/documents.py (`TEMPLATES`); this script
lays it out per GB/T 9704 (services/documents/layout.py) and writes `<kind>.docx`. The output is
byte-reproducible (fixed zip timestamps), so `--check` (run by the tests) catches a template text
changed without regenerating. A clerk may edit the generated files in Word/WPS; a county
overrides one by dropping its edited copy into DOCUMENTS_TEMPLATE_DIR (docs/documents.md).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plugins.builtin.documents import TEMPLATES  # noqa: E402
from services.documents.layout import build_report_template, build_template, to_bytes  # noqa: E402
from services.documents.render import TEMPLATES_DIR, normalize_zip  # noqa: E402
from services.documents.reports import REPORT_KINDS  # noqa: E402


# Department plugins shipped as their own distributions in this repository whose DOCX templates
# are generated here too: (folder holding the package, module name); each module has TEMPLATES
# (same shape as the built-in ones) and TEMPLATES_DIR.
PLUGIN_DISTRIBUTIONS = ((ROOT / "plugins" / "cgj", "zhifa_cgj"), (ROOT / "plugins" / "wjj", "zhifa_wjj"),
                        (ROOT / "plugins" / "jtj", "zhifa_jtj"))


def _docx(template: dict) -> bytes:
    return normalize_zip(to_bytes(build_template(template["title"], template["body"])))


def generated() -> dict[str, bytes]:
    """kind -> the DOCX bytes of its built-in template (text templates and the reports' tables)."""
    out = {kind: _docx(t) for kind, t in TEMPLATES.items()}
    out.update({kind: normalize_zip(to_bytes(build_report_template(title))) for kind, title in REPORT_KINDS.items()})
    return out


def targets(out: Path) -> dict[Path, bytes]:
    """Every file this script writes: built-in templates into `out`, plugin templates into the plugin."""
    files = {out / f"{kind}.docx": data for kind, data in generated().items()}
    for folder, module_name in PLUGIN_DISTRIBUTIONS:
        spec = importlib.util.spec_from_file_location(module_name, folder / module_name / "__init__.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        files.update({Path(module.TEMPLATES_DIR) / f"{kind}.docx": _docx(t) for kind, t in module.TEMPLATES.items()})
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the shipped files")
    parser.add_argument("--out", type=Path, default=TEMPLATES_DIR)
    args = parser.parse_args(argv)
    stale = []
    for path, data in targets(args.out).items():
        if args.check:
            if not path.exists() or path.read_bytes() != data:
                stale.append(path.name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({len(data)} bytes)")
    if stale:
        print(f"out of date (run scripts/make_templates.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
