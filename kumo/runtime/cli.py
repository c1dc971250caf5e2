"""The ``kumo`` command."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel

from kumo import __version__
from kumo.agents.compute.choose import choose_driver, why_not_qemu
from kumo.common.config import Settings

app = typer.Typer(help="kumo: an OpenStack-compatible cloud.", no_args_is_help=True, add_completion=False)
identity_app = typer.Typer(help="Identity administration.", no_args_is_help=True)
app.add_typer(identity_app, name="identity")
from kumo.runtime.tiny import image_cli  # noqa: E402

app.add_typer(image_cli(), name="image")
console = Console(stderr=True)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", envvar="KUMO_DATA_DIR", help="Where kumo keeps its state.")
]
ConfigFile = Annotated[Path | None, typer.Option("--config", help="TOML settings file (default <data-dir>/kumo.toml).")]
Host = Annotated[str | None, typer.Option("--host", help="Address to listen on.")]
Port = Annotated[int | None, typer.Option("--port", help="Port to listen on.")]


def load_settings(config: Path | None, data_dir: Path | None, **overrides) -> tuple[Settings, str | None]:  # type: ignore[no-untyped-def]
    if config is None and data_dir is not None and (data_dir / "kumo.toml").is_file():
        config = data_dir / "kumo.toml"
    settings = Settings.load(config, data_dir=data_dir, **overrides)
    settings.compute.driver = choose_driver(settings.compute.driver)  # resolve "auto" once, here
    if overrides.get("admin_password"):
        settings.identity.admin_password = overrides["admin_password"]
    return settings, str(config) if config else None


@app.command()
def up(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    host: Host = None,
    port: Port = None,
    admin_password: Annotated[
        str | None, typer.Option("--admin-password", envvar="KUMO_ADMIN_PASSWORD", help="Admin password on first start.")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Worker processes (all-in-one).")] = None,
    isolated: Annotated[bool, typer.Option("--isolated", help="One process per service, restarted when it dies.")] = False,
    object_nodes: Annotated[int | None, typer.Option("--object-nodes", min=1, max=16,
        help="Object-storage nodes of a new ring (3: three replicas on loopback).")] = None,
    fake_compute_hosts: Annotated[int | None, typer.Option("--fake-compute-hosts", min=1, max=16,
        help="Compute hosts to run in-process with the fake driver (2+: migrations, multi-host tests).")] = None,
) -> None:
    """Start the all-in-one cloud in the foreground (Ctrl-C stops it)."""
    import os

    from kumo.runtime import assemble, server, supervisor
    from kumo.runtime.services import all_services

    started = time.monotonic()
    if object_nodes is not None:  # through the environment, so worker processes see it too
        os.environ["KUMO_OBJECT_STORE__NODES"] = str(object_nodes)
    if fake_compute_hosts is not None:
        os.environ["KUMO_COMPUTE__FAKE_HOSTS"] = str(fake_compute_hosts)
    settings, config_file = load_settings(config, data_dir, host=host, port=port, workers=workers, admin_password=admin_password)
    if settings.compute.fake_hosts > 1 and settings.compute.driver != "fake":
        console.print(f"[red]compute.fake_hosts = {settings.compute.fake_hosts} needs the fake compute driver "
                      f"(this one runs {settings.compute.driver}; set compute.driver = \"fake\")[/]")
        raise typer.Exit(2)
    services = all_services()
    # Isolated: each service on its own port (identity keeps the main one), and so in the catalog.
    urls = None
    if isolated:
        host = settings.base_url.rsplit(":", 1)[0]
        urls = {name: f"{host}:{port}" for name, port in supervisor.ports_for(settings, services).items()}
    runtime = assemble.prepare(settings, services, urls)

    def ready() -> None:
        _print_ready(settings, runtime.identity_url, time.monotonic() - started, isolated)
        if settings.compute.driver == "qemu":  # like DevStack's CirrOS: a bootable public image
            from kumo.runtime.tiny import register_when_ready

            register_when_ready(settings, say=console.print)

    if isolated:
        ready()
        raise typer.Exit(supervisor.supervise(settings, services, console, config_file))
    server.serve(settings, services, on_ready=ready, config_file=config_file)


@app.command()
def serve(
    services: Annotated[list[str], typer.Argument(
        help="Node roles (controller, compute, network, storage) or services (identity, image, compute-api, ...).")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
    host: Host = None,
    port: Port = None,
    identity_url: Annotated[str | None, typer.Option("--identity-url", help="Where identity answers.")] = None,
    no_prepare: Annotated[bool, typer.Option("--no-prepare", help="Skip migrations and bootstrap.")] = False,
    isolated: Annotated[bool, typer.Option("--isolated", help="controller: one process per service.")] = False,
) -> None:
    """Serve a node role or chosen services (the building blocks of split deployments)."""
    from kumo.runtime import assemble, roles, server

    try:
        plan = roles.resolve(services)
    except KeyError as exc:
        console.print(f"[red]{exc.args[0]}[/]")
        raise typer.Exit(2) from None
    if plan.agents:  # compute / network / storage node: agents talking to the controller over HTTP
        settings, _ = load_settings(config, data_dir, host=host, port=port)
        raise typer.Exit(roles.serve_agents(settings, plan.agents, console.print))
    if plan.controller:
        roles.controller_environment()
    settings, config_file = load_settings(config, data_dir, host=host, port=port, identity_url=identity_url)
    specs = plan.services
    if plan.controller and isolated:
        raise typer.Exit(roles.supervise_controller(settings, specs, console, config_file))
    if not no_prepare:
        assemble.prepare(settings, specs)
    if plan.controller:
        roles.write_nodes_url(settings, settings.base_url + "/nodes")
    server.serve(settings, specs, config_file=config_file)


@identity_app.command("rotate-keys")
def rotate_keys(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Rotate the Fernet token keys (staged -> primary; a new staged key)."""
    from kumo.identity.tokens import KeyRepository

    settings, _ = load_settings(config, data_dir)
    repo = KeyRepository(settings.data_dir / "fernet-keys", settings.identity.max_active_keys)
    indexes = repo.rotate()
    console.print(f"keys now: {indexes} (primary {max(indexes)}, staged 0)")


agent_app = typer.Typer(help="Data-plane agents (split deployments).", no_args_is_help=True)
app.add_typer(agent_app, name="agent")


@agent_app.command("network")
def agent_network(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    cloud: Annotated[str, typer.Option("--cloud", help="Credentials in <data-dir>/clouds.yaml.")] = "kumo-admin",
    driver: Annotated[str | None, typer.Option("--driver", help="auto | linux | fake | none")] = None,
    host: Annotated[str | None, typer.Option("--agent-host", help="This node's name (default: hostname).")] = None,
) -> None:
    """Run the network agent in the foreground (bridges, DHCP, routers, security groups)."""
    import asyncio
    import contextlib
    import logging

    from kumo.agents.network.runner import network_agent

    settings, _ = load_settings(config, data_dir)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")

    async def main() -> None:
        async with network_agent(settings, cloud=cloud, say=console.print, driver=driver, host=host,
                                 teardown_on_stop=False) as agent:
            if agent is None:
                raise typer.Exit(1)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


from kumo.runtime.node.cli import join as _join  # noqa: E402
from kumo.runtime.node.cli import node_app  # noqa: E402

app.add_typer(node_app, name="node")

from kumo.object_store.cli import app as _object_store_app  # noqa: E402

app.add_typer(_object_store_app, name="object-store")
app.command("join")(_join)


@app.command()
def version() -> None:
    """Print kumo's version."""
    typer.echo(__version__)


def _driver_line(settings: Settings) -> str:
    if settings.compute.driver == "qemu":
        return "qemu (real VMs; image kumo-tiny is registered in the background)"
    reason = why_not_qemu()
    hosts = f"; {settings.compute.fake_hosts} compute hosts" if settings.compute.fake_hosts > 1 else ""
    return "fake driver (no real VMs" + (f": {reason}" if reason else "") + hosts + ")"


def _print_ready(settings: Settings, identity_url: str, elapsed: float, isolated: bool) -> None:
    d = settings.data_dir
    lines = [
        f"[bold]kumo is ready[/] in {elapsed:.1f}s{' (isolated: one process per service)' if isolated else ''}",
        f"cloud:      {settings.base_url}",
        f"identity:   {identity_url}/v3",
        f"data dir:   {d}",
        f"admin:      user [bold]admin[/], password in {d / 'admin-password'}",
        f"member:     user [bold]demo[/] (project demo), password in {d / 'demo-password'}",
        f"dashboard:  {settings.base_url}/dashboard/",
        f"compute:    {_driver_line(settings)}",
        "",
        "use it:",
        f"  export OS_CLIENT_CONFIG_FILE={d / 'clouds.yaml'}",
        "  openstack --os-cloud kumo-admin token issue     # or kumo / kumo-system-admin",
        f"  source {d / 'openrc'}                            # shell users",
    ]
    console.print(Panel("\n".join(lines), title="kumo", expand=False))


def main() -> None:
    app()
