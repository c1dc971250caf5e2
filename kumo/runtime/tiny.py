"""Register the tiny test image as the public image ``kumo-tiny`` (as DevStack uploads CirrOS).

Runs in a background thread once the cloud answers: builds the image (cached), then talks to
the image API with the admin credentials of the data dir — never to the image database.
Idempotent: an image already named ``kumo-tiny`` is left alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml

from kumo.common.config import Settings

log = logging.getLogger("kumo.runtime.tiny")
NAME = "kumo-tiny"


def _token(auth: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": auth["username"], "password": auth["password"],
        "domain": {"name": auth.get("user_domain_name", "Default")}}}},
        "scope": {"project": {"name": auth["project_name"],
                              "domain": {"name": auth.get("project_domain_name", "Default")}}}}}
    r = httpx.post(auth["auth_url"].rstrip("/") + "/auth/tokens", json=body, timeout=30.0)
    r.raise_for_status()
    return r.headers["X-Subject-Token"], r.json()["token"].get("catalog", [])


def _image_url(catalog: list[dict[str, Any]]) -> str:
    for entry in catalog:
        if entry.get("type") == "image":
            for ep in entry.get("endpoints", []):
                if ep.get("interface") == "public":
                    return str(ep["url"]).rstrip("/")
    raise RuntimeError("no image service in the catalog")


def register(data_dir: Path, image: Path, name: str = NAME) -> str:
    """Upload ``image`` as public qcow2 ``name`` unless an image of that name exists; return its id."""
    auth = yaml.safe_load((data_dir / "clouds.yaml").read_text())["clouds"]["kumo-admin"]["auth"]
    token, catalog = _token(auth)
    url = _image_url(catalog)
    headers = {"X-Auth-Token": token}
    with httpx.Client(timeout=120.0, headers=headers) as c:
        found = c.get(f"{url}/v2/images", params={"name": name})
        found.raise_for_status()
        existing = found.json().get("images", [])
        if existing:
            return str(existing[0]["id"])
        r = c.post(f"{url}/v2/images", json={
            "name": name, "disk_format": "qcow2", "container_format": "bare", "visibility": "public",
            "min_ram": 64, "os_distro": "kumo-tiny", "hw_disk_bus": "virtio", "hw_vif_model": "virtio"})
        r.raise_for_status()
        image_id = str(r.json()["id"])
        with open(image, "rb") as fh:
            up = c.put(f"{url}/v2/images/{image_id}/file", content=fh.read(),
                       headers={"Content-Type": "application/octet-stream"})
        if up.status_code >= 400:
            c.delete(f"{url}/v2/images/{image_id}")
            up.raise_for_status()
        return image_id


def register_when_ready(settings: Settings, say: Callable[[str], None] = log.warning,
                        timeout: float = 300.0) -> threading.Thread:
    """Build and register ``kumo-tiny`` in a background thread (retrying until the API answers)."""

    def work() -> None:
        from kumo.agents.compute import tiny_image

        try:
            image = tiny_image.build()
        except tiny_image.BuildError as exc:
            say(f"{NAME} not registered: the tiny image cannot be built here ({exc})")
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                image_id = register(settings.data_dir, image)
                say(f"image {NAME} is {image_id} (public)")
                return
            except (httpx.HTTPError, OSError, KeyError, RuntimeError) as exc:
                if time.monotonic() > deadline:
                    say(f"{NAME} not registered: {exc}")
                    return
                time.sleep(1.0)

    thread = threading.Thread(target=work, name="kumo-tiny-register", daemon=True)
    thread.start()
    return thread


def image_cli() -> Any:
    """``kumo image ...``: the typer app (built on demand so importing this module stays cheap)."""
    from rich.console import Console

    app = typer.Typer(help="Images: the tiny test image.", no_args_is_help=True)
    console = Console(stderr=True)

    @app.command("build-tiny")
    def build_tiny(
        output: Annotated[Path | None, typer.Option("--output", help="Copy the image here (qcow2).")] = None,
        force: Annotated[bool, typer.Option("--force", help="Rebuild even when cached.")] = False,
    ) -> None:
        """Build the CirrOS-like test image kumo-tiny (cached; from Debian packages)."""
        from kumo.agents.compute import tiny_image

        with console.status("building kumo-tiny") as status:
            def say(msg: str) -> None:
                status.update(msg)
                console.print(f"  {msg}")

            try:
                path = tiny_image.build(output, say=say, force=force)
            except tiny_image.BuildError as exc:
                console.print(f"[red]cannot build kumo-tiny: {exc}[/]")
                raise typer.Exit(1) from None
        typer.echo(str(path))

    return app
