"""The /admin page and its files as served by the hub (the browser tests drive the page)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

STATIC = Path(__file__).resolve().parents[2] / "admin" / "static"


def test_the_page_and_its_modules_are_served(client: TestClient) -> None:
    r = client.get("/admin")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert 'src="/admin/static/app.js"' in r.text
    assert client.get("/admin/", follow_redirects=False).headers["location"] == "/admin"
    # every module the page imports, and the stylesheet, come from the hub
    names = {"app.js", "app.css"}
    for source in STATIC.glob("*.js"):
        names |= set(re.findall(r'from "\./([\w.]+)"', source.read_text()))
    for name in sorted(names):
        r = client.get(f"/admin/static/{name}")
        assert r.status_code == 200, name
        assert r.headers["content-type"].startswith(("text/javascript", "text/css")), name
        assert r.headers["cache-control"] == "no-cache"


def test_only_the_page_files_are_served(client: TestClient) -> None:
    for path in (
        "/admin/static/web.py",
        "/admin/static/..%2fweb.py",
        "/admin/static/%2e%2e%2f__init__.py",
        "/admin/static/missing.js",
        "/admin/static/.hidden.js",
    ):
        assert client.get(path).status_code == 404, path


def test_the_chart_library_is_served_from_the_hub(client: TestClient) -> None:
    """The dashboard's Chart.js comes from admin/static/vendor/ (no CDN: the CSP allows only
    the hub's scripts); the licence and notes beside it, and anything unlisted, are not served."""
    assert 'import("./vendor/chart.umd.min.js")' in (STATIC / "dashboard.js").read_text()
    r = client.get("/admin/static/vendor/chart.umd.min.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.text.startswith("/*!\n * Chart.js v4.")
    assert "eval(" not in r.text and "new Function" not in r.text  # CSP: no 'unsafe-eval'
    for name in ("chart.js-LICENSE.md", "README.md", "missing.js", "..%2fapp.js"):
        assert client.get(f"/admin/static/vendor/{name}").status_code == 404, name
