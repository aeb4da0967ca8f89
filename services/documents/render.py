"""Rendering a document (文书): a DOCX template filled by docxtpl, then PDF by LibreOffice headless.

- `fill_docx(template_bytes, fields)`: every placeholder the template uses must have a value
  (all gaps are reported at once by name, with the Chinese label); values are XML-escaped
  (autoescape), multi-line values keep their line breaks. The DOCX zip is written with fixed
  timestamps so the same template and facts give the same bytes (and the same sha256).
- `docx_to_pdf(docx_bytes)`: `soffice --headless --convert-to pdf` in a private temporary
  directory with its own LibreOffice profile slot (two conversions never share a profile, which
  LibreOffice does not allow: within a process by the slot pool, across the processes sharing the
  work directory by a file lock on the profile), fonts resolved through services/documents/fonts.conf (Noto CJK
  for the GB/T 9704 font names), fonts embedded by LibreOffice's PDF export.
"""
from __future__ import annotations

import contextlib
import fcntl
import io
import os
import shutil
import subprocess
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Mapping

from docxtpl import DocxTemplate, Listing
from jinja2 import TemplateSyntaxError

from plugins.builtin.documents import DocumentError, MissingFieldError

HERE = Path(__file__).resolve().parent
FONTS_CONF = HERE / "fonts.conf"
TEMPLATES_DIR = HERE / "templates"
FIXED_ZIP_TIME = (2000, 1, 1, 0, 0, 0)


class ConverterUnavailable(DocumentError):
    """LibreOffice is not installed (or failed); the DOCX is still available."""


def normalize_zip(data: bytes) -> bytes:
    """The same zip with fixed member timestamps and order: byte-reproducible DOCX files."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            member = zipfile.ZipInfo(info.filename, FIXED_ZIP_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            dst.writestr(member, src.read(info.filename))
    return out.getvalue()


def _template(template_bytes: bytes) -> DocxTemplate:
    try:
        doc = DocxTemplate(io.BytesIO(template_bytes))
        doc.init_docx()
        return doc
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DocumentError(f"文书模板不是有效的 DOCX 文件：{exc}") from None


def template_variables(template_bytes: bytes) -> set[str]:
    """The placeholder names a DOCX template uses."""
    try:
        return set(_template(template_bytes).get_undeclared_template_variables())
    except TemplateSyntaxError as exc:
        raise DocumentError(f"文书模板占位符格式错误（第 {exc.lineno} 行）：{exc.message}") from None


def _value(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [{k: _value(v) for k, v in item.items()} if isinstance(item, Mapping) else _value(item)
                for item in value]   # the rows of a table of figures (report documents)
    text = value if isinstance(value, str) else str(value)
    return Listing(text) if "\n" in text else text


def fill_docx(template_bytes: bytes, fields: Mapping[str, Any], title: str | None = None) -> bytes:
    """The filled DOCX; MissingFieldError naming every placeholder without a value."""
    doc = _template(template_bytes)
    try:
        names = set(doc.get_undeclared_template_variables())
    except TemplateSyntaxError as exc:
        raise DocumentError(f"文书模板占位符格式错误（第 {exc.lineno} 行）：{exc.message}") from None
    missing = sorted(n for n in names if fields.get(n) is None or fields.get(n) == "")
    if missing:
        raise MissingFieldError(missing, title)
    context = {name: _value(fields[name]) for name in names}
    try:
        doc.render(context, autoescape=True)
    except Exception as exc:  # jinja errors inside a clerk-edited template
        raise DocumentError(f"文书{'《' + title + '》' if title else ''}渲染失败：{exc}") from None
    out = io.BytesIO()
    doc.save(out)
    return normalize_zip(out.getvalue())


# ---- PDF ------------------------------------------------------------------------------------

def soffice_path() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


class _Profiles:
    """A fixed number of LibreOffice user profiles, each used by one conversion at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[int] | None = None
        self._cond = threading.Condition(self._lock)

    def acquire(self, slots: int) -> int:
        with self._cond:
            if self._free is None:
                self._free = list(range(max(1, slots)))
            while not self._free:
                self._cond.wait()
            return self._free.pop()

    def release(self, slot: int) -> None:
        with self._cond:
            assert self._free is not None
            self._free.append(slot)
            self._cond.notify()


_profiles = _Profiles()


def work_dir() -> Path:
    base = os.environ.get("DOCUMENTS_WORK_DIR") or os.path.join(tempfile.gettempdir(), f"zhifa-documents-{os.getuid()}")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _profile_lock(profile: Path, timeout: float):
    """The profile for this process alone among every process on the machine that shares the work
    directory (several services, several test runs): LibreOffice cannot share a profile — a second
    soffice on a profile in use hands its job to the first and fails. A non-blocking flock polled
    with a (green) sleep, so the event loop is never blocked."""
    deadline = time.monotonic() + timeout
    with open(f"{profile}.lock", "a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ConverterUnavailable(f"PDF 转换排队超时（{timeout:g} 秒）") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def docx_to_pdf(docx_bytes: bytes, *, timeout: float = 120.0, slots: int = 2) -> bytes:
    """The PDF of a DOCX through LibreOffice headless; ConverterUnavailable if it cannot."""
    binary = soffice_path()
    if binary is None:
        raise ConverterUnavailable("服务器未安装 LibreOffice（scripts/bootstrap.sh docs），无法生成 PDF")
    slot = _profiles.acquire(slots)
    try:
        profile = work_dir() / f"lo-profile-{slot}"
        with _profile_lock(profile, timeout):
            return _convert(binary, profile, docx_bytes, timeout)
    finally:
        _profiles.release(slot)


def _convert(binary: str, profile: Path, docx_bytes: bytes, timeout: float) -> bytes:
    """One conversion in a private temporary directory with the given (locked) profile."""
    with tempfile.TemporaryDirectory(dir=work_dir()) as tmp:
        src = Path(tmp) / "document.docx"
        src.write_bytes(docx_bytes)
        env = {**os.environ, "FONTCONFIG_FILE": str(FONTS_CONF), "HOME": tmp, "SAL_USE_VCLPLUGIN": "svp"}
        cmd = [binary, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--invisible",
               "--nodefault", "--nofirststartwizard", "--nolockcheck", "--nologo", "--norestore",
               "--convert-to", "pdf:writer_pdf_Export", "--outdir", tmp, str(src)]
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ConverterUnavailable(f"PDF 转换超时（{timeout:g} 秒）") from None
        pdf = Path(tmp) / "document.pdf"
        if done.returncode != 0 or not pdf.exists():
            detail = (done.stderr or done.stdout or b"").decode("utf-8", "replace").strip()[-300:]
            raise ConverterUnavailable(f"PDF 转换失败（LibreOffice 退出码 {done.returncode}）：{detail}")
        return pdf.read_bytes()
