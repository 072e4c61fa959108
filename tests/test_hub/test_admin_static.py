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
