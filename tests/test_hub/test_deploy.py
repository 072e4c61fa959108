"""docker-compose.yml, deploy/nginx.conf and the Dockerfile say what the scale-out tests run:
two hub processes sharing PostgreSQL, Redis, the secret key and the data folder, behind a proxy
that upgrades WebSockets; the image runs as a non-root user with a health check."""

from __future__ import annotations

import ipaddress
import re

import yaml

from hub.ops.settings import Settings
from tests.conftest import ROOT


def test_compose_runs_two_hubs_like_the_scale_out_tests() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    hubs = {name: s for name, s in services.items() if s.get("build") == "."}
    assert len(hubs) == 2, sorted(services)
    known = {str(f.validation_alias) for f in Settings.model_fields.values() if f.validation_alias}
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


def test_client_addresses_come_from_nginx_only() -> None:
    """nginx, the edge, replaces a client's X-Forwarded-For with the client's address; the hubs
    believe that header from nginx's address alone (not from `*`, nor uvicorn's defaults)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    nginx_address = services["nginx"]["networks"]["default"]["ipv4_address"]
    [subnet] = compose["networks"]["default"]["ipam"]["config"]
    assert ipaddress.ip_address(nginx_address) in ipaddress.ip_network(subnet["subnet"])
    # dynamic addresses (the other containers) are given from a range without nginx's
    assert ipaddress.ip_address(nginx_address) not in ipaddress.ip_network(subnet["ip_range"])
    for name, hub in services.items():
        if hub.get("build") != ".":
            continue
        env = hub["environment"]
        assert "FORWARDED_ALLOW_IPS" not in env, name
        assert env["KEFU_TRUSTED_PROXIES"] == nginx_address, name
        settings = Settings(trusted_proxies=env["KEFU_TRUSTED_PROXIES"])
        assert settings.trusted_proxies == [nginx_address]

    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(r"proxy_set_header X-Forwarded-For \$remote_addr;", nginx)
    assert "$proxy_add_x_forwarded_for" not in nginx  # appending passes a forged one on
    # the image serves with `kefu run`, which leaves X-Forwarded-For to trusted_proxies
    assert 'CMD ["kefu", "run"' in (ROOT / "Dockerfile").read_text()
