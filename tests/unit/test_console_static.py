"""The console's files as the API serves them (services/api/console.py): the page, hashed assets,
nothing outside console/dist, a clear page when the console is not built."""
from services.api import console


def make_dist(tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>控制台</title>", encoding="utf-8")
    (tmp_path / "assets" / "index-abc123.js").write_text("console.log(1)")
    (tmp_path.parent / "secret.txt").write_text("not served")
    return tmp_path


def test_page_is_served_uncached_with_a_strict_policy(tmp_path):
    dist = make_dist(tmp_path)
    for path in ("/", "/index.html"):
        resp = console.serve(path, dist)
        assert resp.status_code == 200 and resp.mimetype == "text/html"
        assert "控制台" in resp.get_data(as_text=True)
        assert resp.headers["Cache-Control"] == "no-cache"
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_assets_are_cached_and_nothing_else_is_served(tmp_path):
    dist = make_dist(tmp_path)
    resp = console.serve("/assets/index-abc123.js", dist)
    assert resp.status_code == 200 and resp.mimetype in ("text/javascript", "application/javascript")
    assert "immutable" in resp.headers["Cache-Control"]
    for path in ("/assets/../../secret.txt", "/assets/%2e%2e/secret.txt", "/assets/missing.js", "/secret.txt",
                 "/favicon.ico", "/assets/"):
        assert console.serve(path, dist) is None, path


def test_an_unbuilt_console_says_how_to_build_it(tmp_path):
    resp = console.serve("/", tmp_path / "nothing")
    assert resp.status_code == 503 and "scripts/bootstrap.sh console" in resp.get_data(as_text=True)
