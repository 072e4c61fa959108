"""docker-compose.yml, deploy/nginx.conf and the Dockerfile say what the scale-out tests run:
two hub processes sharing PostgreSQL, Redis, the secret key and the data folder, behind a proxy
that upgrades WebSockets; the image runs as a non-root user with a health check."""

from __future__ import annotations

import re

import yaml

from hub.settings import Settings
from tests.conftest import ROOT


def test_compose_runs_two_hubs_like_the_scale_out_tests() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    hubs = {name: s for name, s in services.items() if s.get("build") == "."}
    assert len(hubs) == 2, sorted(services)
    known = {
        str(f.validation_alias) for f in Settings.model_fields.values() if f.validation_alias
    } | {"FORWARDED_ALLOW_IPS"}  # uvicorn's
    for name, hub in hubs.items():
        env = hub["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+asyncpg://"), name
        assert env["REDIS_URL"].startswith("redis://"), name
        assert set(env) <= known, set(env) - known  # no setting the hub would ignore
        assert hub["volumes"] == ["hub-data:/app/data"]  # media and the model, shared
        assert "ports" not in hub  # reached through the proxy only
    first, second = hubs
    assert services[second]["depends_on"] == {first: {"condition": "service_healthy"}}

    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    upstream = re.findall(r"server (\w+):8000", nginx)
    assert sorted(upstream) == sorted(hubs)
    assert "proxy_set_header Upgrade $http_upgrade" in nginx


def test_the_image_runs_as_a_user_with_a_health_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M)
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile
    for package in ("hub", "channels", "nlu", "flows", "knowledge", "admin"):
        assert f"COPY {package} ./{package}" in dockerfile, package
