"""``kumo up --isolated``: each service in its own process, restarted when it dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from rich.console import Console

from kumo.common.config import Settings
from kumo.common.service import ServiceSpec


@dataclass
class Child:
    service: ServiceSpec
    port: int
    proc: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0
    backoff: float = 0.5
    history: list[float] = field(default_factory=list)


def ports_for(settings: Settings, services: list[ServiceSpec]) -> dict[str, int]:
    """Identity keeps the main port (so auth URLs never change); the others follow it."""
    ports, next_port = {}, settings.port + 1
    for service in services:
        if service.name == "identity":
            ports[service.name] = settings.port
        else:
            ports[service.name] = next_port
            next_port += 1
    return ports


def _start(child: Child, settings: Settings, config_file: str | None) -> None:
    cmd = [
        sys.executable, "-m", "kumo", "serve", f"{child.service.name}-api",  # "compute" alone is the node role
        "--no-prepare", "--host", settings.host, "--port", str(child.port),
        "--data-dir", str(settings.data_dir), "--identity-url", f"{settings.base_url}/identity",
    ]
    if config_file:
        cmd += ["--config", config_file]
    child.proc = subprocess.Popen(cmd, start_new_session=True, env={**os.environ, "KUMO_RUNTIME_ENDPOINTS": _endpoints})
    child.started_at = time.monotonic()


_endpoints = "[]"  # every service's catalog endpoint, handed to each child (it serves only its own)


def supervise(settings: Settings, services: list[ServiceSpec], console: Console, config_file: str | None) -> int:
    global _endpoints
    ports = ports_for(settings, services)
    host = settings.base_url.rsplit(":", 1)[0]
    _endpoints = json.dumps([(e.type, e.name, f"{host}:{ports[s.name]}{e.path}") for s in services for e in s.catalog])
    from kumo.agents.network.config import AgentSettings

    if "compute" in ports and AgentSettings.from_settings(settings).metadata_url.startswith(settings.base_url):
        # not configured: the network child's metadata proxies forward to the compute child
        os.environ["KUMO_NETWORK_AGENT__METADATA_URL"] = f"{host}:{ports['compute']}/compute-metadata"
    children = [Child(s, ports[s.name]) for s in services]
    stopping = False

    def stop(_signum, _frame):  # type: ignore[no-untyped-def]
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        _start(child, settings, config_file)
        console.print(f"[green]started[/] {child.service.name} (pid {child.proc.pid}) on port {child.port}")
    try:
        while not stopping:
            time.sleep(0.2)
            for child in children:
                code = child.proc.poll() if child.proc else 0
                if code is None or stopping:
                    continue
                # Died: restart with exponential backoff, reset after a minute of health.
                if time.monotonic() - child.started_at > 60:
                    child.backoff = 0.5
                console.print(
                    f"[red]{child.service.name} exited with {code}[/]; restarting in {child.backoff:.1f}s"
                )
                time.sleep(child.backoff)
                child.backoff = min(child.backoff * 2, 30)
                child.restarts += 1
                _start(child, settings, config_file)
                console.print(f"[green]restarted[/] {child.service.name} (pid {child.proc.pid})")
    finally:
        for child in children:
            if child.proc and child.proc.poll() is None:
                child.proc.terminate()
        deadline = time.monotonic() + 15
        for child in children:
            if child.proc:
                try:
                    child.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.proc.kill()
                    child.proc.wait()
    return 0
