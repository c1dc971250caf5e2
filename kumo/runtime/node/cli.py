"""``kumo node ...`` and ``kumo join``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

node_app = typer.Typer(help="Nodes of a multi-node cloud (docs/multinode.md).", no_args_is_help=True)
token_app = typer.Typer(help="One-time join tokens (run on the controller).", no_args_is_help=True)
node_app.add_typer(token_app, name="token")
console = Console(stderr=True)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", envvar="KUMO_DATA_DIR", help="Where kumo keeps its state.")
]
ConfigFile = Annotated[Path | None, typer.Option("--config", help="TOML settings file (default <data-dir>/kumo.toml).")]


def _settings(config: Path | None, data_dir: Path | None):  # type: ignore[no-untyped-def]
    from kumo.runtime.cli import load_settings

    return load_settings(config, data_dir)[0]


def _registry(settings):  # type: ignore[no-untyped-def]
    from kumo.runtime.node.app import registry_for

    reg = registry_for(settings)
    reg.migrate()
    return reg


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]{message}[/]")
    return typer.Exit(code)


@token_app.command("create")
def token_create(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    roles: Annotated[str, typer.Option("--roles", help="Roles the node may join with.")] = "compute,network,storage",
    ttl: Annotated[int, typer.Option("--ttl", help="Seconds the token stays valid.")] = 3600,
    description: Annotated[str, typer.Option("--description")] = "",
) -> None:
    """Make a one-time, expiring join token (stored hashed) and print the join command."""
    from kumo.common.errors import APIError

    settings = _settings(config, data_dir)
    reg = _registry(settings)
    try:
        created = reg.create_token(roles.split(","), ttl, description)
    except APIError as exc:
        raise _fail(exc.message, 2) from None
    finally:
        reg.db.dispose()
    url_file = settings.data_dir / "nodes-url"
    url = url_file.read_text().strip() if url_file.is_file() else settings.base_url + "/nodes"
    typer.echo(created.token)
    console.print(f"expires {created.expires_at.isoformat()}Z; roles {','.join(created.roles)}; on the new node run:")
    console.print(f"  kumo join {url} --token {created.token} --roles {created.roles[0]}", soft_wrap=True)


@token_app.command("list")
def token_list(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """List join tokens (never their secrets)."""
    reg = _registry(_settings(config, data_dir))
    try:
        typer.echo(json.dumps(reg.list_tokens(), indent=2))
    finally:
        reg.db.dispose()


@node_app.command("list")
def node_list(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Every node, its roles, last heartbeat and health (run on the controller)."""
    reg = _registry(_settings(config, data_dir))
    try:
        nodes = reg.list_nodes()
    finally:
        reg.db.dispose()
    if as_json:
        typer.echo(json.dumps(nodes, indent=2))
        return
    table = Table("name", "roles", "address", "last heartbeat", "health")
    for n in nodes:
        health = "[green]up[/]" if n["health"] == "up" else "[red]down[/]"
        table.add_row(n["name"], ",".join(n["roles"]), n["address"], n["last_heartbeat"] or "never", health)
    Console().print(table)


@node_app.command("delete")
def node_delete(name: str, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Forget a node (its service user stays until an admin deletes it)."""
    from kumo.common.errors import APIError

    reg = _registry(_settings(config, data_dir))
    try:
        reg.delete(name)
    except APIError as exc:
        raise _fail(exc.message) from None
    finally:
        reg.db.dispose()


@node_app.command("install-units")
def install_units(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    roles: Annotated[str | None, typer.Option("--roles", help="Default: this node's roles.")] = None,
    unit_dir: Annotated[Path, typer.Option("--unit-dir", help="Where to write the units.")] = Path(
        "/etc/systemd/system"),
    user: Annotated[str, typer.Option("--user", help="Run the services as this user.")] = "",
    enable: Annotated[bool, typer.Option("--enable", help="Also systemctl enable --now them.")] = False,
) -> None:
    """Write systemd units (Restart=on-failure) for this node's roles; enable them only if asked."""
    from kumo.runtime import units
    from kumo.runtime.node.registry import ROLES

    settings = _settings(config, data_dir)
    chosen = [r for r in (roles.split(",") if roles else settings.node.roles) if r]
    if not chosen:
        raise _fail("this node has no roles: pass --roles (e.g. controller) or run `kumo join` first", 2)
    bad = [r for r in chosen if r not in ROLES]
    if bad:
        raise _fail(f"unknown role(s) {', '.join(bad)}; roles: {', '.join(ROLES)}", 2)
    written = units.install(units.units_for(chosen, settings.data_dir.resolve(), sys.executable, user),
                            unit_dir, enable)
    for path in written:
        typer.echo(str(path))
    if not enable:
        console.print("not enabled; to start them: systemctl daemon-reload && systemctl enable --now "
                      + " ".join(p.name for p in written))


def join(
    controller_url: Annotated[str, typer.Argument(help="The controller's URL, e.g. http://10.0.0.10:5100")],
    token: Annotated[str, typer.Option("--token", envvar="KUMO_JOIN_TOKEN", help="From `kumo node token create`.")],
    roles: Annotated[str, typer.Option("--roles", help="compute, network, storage (comma separated).")],
    data_dir: DataDir = None,
    name: Annotated[str | None, typer.Option("--name", help="This node's name (default: hostname).")] = None,
    address: Annotated[str | None, typer.Option(
        "--address", help="This node's address for other nodes (default: the one routing to the controller).")] = None,
    host: Annotated[str, typer.Option("--host", help="Listen address (storage nodes).")] = "0.0.0.0",
    port: Annotated[int, typer.Option("--port", help="Listen port (storage nodes).")] = 6200,
    network_driver: Annotated[str, typer.Option("--network-driver", help="auto | linux | fake | none")] = "auto",
    compute_driver: Annotated[str, typer.Option("--compute-driver", help="Virt driver of the compute agent.")] = "fake",
    ca_file: Annotated[str, typer.Option("--ca-file", help="CA bundle for a controller behind TLS.")] = "",
    start: Annotated[bool, typer.Option("--start/--no-start", help="Start the roles now (foreground).")] = False,
) -> None:
    """Join this machine to a cloud: spend a join token, receive the configuration, register."""
    from kumo.common.config import default_data_dir
    from kumo.runtime import roles as node_roles
    from kumo.runtime.node.join import request_join, write_node_files

    chosen = [r.strip() for r in roles.split(",") if r.strip()]
    bad = [r for r in chosen if r not in node_roles.AGENT_ROLES]
    if not chosen or bad:
        raise _fail(f"--roles takes {', '.join(node_roles.AGENT_ROLES)}; got {roles!r}", 2)
    target = data_dir or (Path(os.environ["KUMO_DATA_DIR"]) if os.environ.get("KUMO_DATA_DIR") else default_data_dir())
    node_name = name or node_roles.default_name()
    try:
        addr = address or node_roles.local_address(controller_url)
        answer = request_join(controller_url, token, node_name, chosen, addr, verify=ca_file or True)
    except (RuntimeError, OSError) as exc:
        raise _fail(str(exc)) from None
    extra = {"node": {"ca_file": ca_file}} if ca_file else None
    written = write_node_files(target, answer, host=host, port=port, network_driver=network_driver,
                               compute_driver=compute_driver, extra_toml=extra)
    console.print(f"[green]joined[/] as node [bold]{node_name}[/] ({','.join(chosen)}); wrote:")
    for path in written:
        console.print(f"  {path}")
    command = f"kumo serve {' '.join(chosen)} --data-dir {target}"
    if not start:
        console.print(f"start it with:\n  {command}\nor as systemd units:\n  kumo node install-units --data-dir {target}")
        return
    settings = _settings(None, target)
    raise typer.Exit(node_roles.serve_agents(settings, chosen, console.print))
