"""The justice bureau's console (console/, a Vue single-page application) served at `/`.

The built files (`console/dist`, made by `scripts/bootstrap.sh console`) are served for GET requests
that are not API routes: `/` is the page, `/assets/<file>` its bundled scripts, styles and fonts —
everything from this server, nothing from a CDN (the county network is closed). Hashed asset names are
cached for a year; the page itself is never cached, so a new build shows at the next load.
"""
from __future__ import annotations

import mimetypes
from pathlib import Path

from werkzeug.security import safe_join
from werkzeug.wrappers import Response

DIST = Path(__file__).resolve().parents[2] / "console" / "dist"
# no inline scripts, no foreign origins; Element Plus sets inline style attributes, ECharts draws on canvas
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; "
       "form-action 'self'")
NOT_BUILT = ("<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>控制台尚未构建</title>"
             "<p>控制台尚未构建：请运行 <code>scripts/bootstrap.sh console</code>（npm ci 与 npm run build）。"
             "接口文档见 <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>。</p></html>")


def _headers(resp: Response, cache: str) -> Response:
    resp.headers["Cache-Control"] = cache
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers["X-Frame-Options"] = "DENY"
    return resp


def serve(path: str, dist: Path = DIST) -> Response | None:
    """The console's answer to `GET path`, or None when the path is not one of its files."""
    rel = path.lstrip("/")
    if rel in ("", "index.html"):
        index = dist / "index.html"
        if not index.is_file():
            return _headers(Response(NOT_BUILT, 503, mimetype="text/html"), "no-store")
        return _headers(Response(index.read_bytes(), mimetype="text/html"), "no-cache")
    if not rel.startswith("assets/"):
        return None
    full = safe_join(str(dist), rel)
    if full is None or not Path(full).is_file():
        return None
    mimetype = mimetypes.guess_type(full)[0] or "application/octet-stream"
    return _headers(Response(Path(full).read_bytes(), mimetype=mimetype), "public, max-age=31536000, immutable")
