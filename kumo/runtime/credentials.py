"""Credentials and client configuration files in the data dir."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import yaml


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def password(data_dir: Path, name: str, given: str = "") -> str:
    """The password kept in ``<data_dir>/<name>-password``; generated on first use."""
    path = data_dir / f"{name}-password"
    if path.is_file():
        stored = path.read_text().strip()
        if stored and not given:
            return stored
    value = given or secrets.token_urlsafe(18)
    _write_private(path, value + "\n")
    return value


def write_client_config(data_dir: Path, auth_url: str, admin_password: str, demo_password: str, region: str) -> None:
    def cloud(user: str, pw: str, project: str | None) -> dict:
        auth = {
            "auth_url": auth_url,
            "username": user,
            "password": pw,
            "user_domain_name": "Default",
        }
        if project:
            auth |= {"project_name": project, "project_domain_name": "Default"}
        return {"auth": auth, "region_name": region, "identity_api_version": 3, "interface": "public"}

    system = cloud("admin", admin_password, None)
    system["auth"]["system_scope"] = "all"
    clouds = {
        "clouds": {
            "kumo": cloud("demo", demo_password, "demo"),
            "kumo-admin": cloud("admin", admin_password, "admin"),
            "kumo-system-admin": system,
        }
    }
    _write_private(data_dir / "clouds.yaml", yaml.safe_dump(clouds, sort_keys=False))
    for name, user, pw, project in (("openrc", "admin", admin_password, "admin"), ("openrc-demo", "demo", demo_password, "demo")):
        _write_private(
            data_dir / name,
            "\n".join(
                [
                    "# source this file to use the openstack CLI against kumo",
                    f"export OS_AUTH_URL={auth_url}",
                    "export OS_IDENTITY_API_VERSION=3",
                    f"export OS_USERNAME={user}",
                    f"export OS_PASSWORD='{pw}'",
                    "export OS_USER_DOMAIN_NAME=Default",
                    f"export OS_PROJECT_NAME={project}",
                    "export OS_PROJECT_DOMAIN_NAME=Default",
                    f"export OS_REGION_NAME={region}",
                    "unset OS_CLOUD OS_SYSTEM_SCOPE",
                    "",
                ]
            ),
        )
