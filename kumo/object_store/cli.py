"""``kumo object-store ...``: the ring builder and a storage node on its own port.

The builder state lives in ``<data-dir>/object-store/object.builder.json``; ``rebalance``
writes the ring file ``object.ring.gz`` next to it with the next version.  Proxies and nodes
reading that file pick the new version up by themselves; ``push`` sends it to every node that
has a URL (nodes also hand a newer ring to their peers while replicating).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated

import typer

from kumo.object_store.ring import Ring, RingBuilder

BUILDER_FILE = "object.builder.json"
RING_FILE = "object.ring.gz"

app = typer.Typer(help="Object storage administration.", no_args_is_help=True)
ring_app = typer.Typer(help="The object ring: devices, weights, rebalance.", no_args_is_help=True)
app.add_typer(ring_app, name="ring")

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", envvar="KUMO_DATA_DIR", help="Where kumo keeps its state.")
]


def _store(data_dir: Path | None) -> Path:
    if data_dir is None:
        from kumo.common.config import Settings

        data_dir = Settings.load().data_dir
    return data_dir / "object-store"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _builder(store: Path) -> RingBuilder:
    """The saved builder, or one made from the ring file a cloud created by itself."""
    if (store / BUILDER_FILE).exists():
        return RingBuilder.load(store / BUILDER_FILE)
    if (store / RING_FILE).exists():
        return RingBuilder.from_ring(Ring.load(store / RING_FILE))
    raise _fail(f"no ring in {store}: run `kumo object-store ring create` first")


@ring_app.command("create")
def create(
    data_dir: DataDir = None,
    part_power: Annotated[int, typer.Option("--part-power", min=1, max=24, help="2^N partitions.")] = 10,
    replicas: Annotated[int, typer.Option("--replicas", min=1, max=16)] = 3,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing ring (its data becomes unreachable).")
    ] = False,
    min_part_hours: Annotated[
        int,
        typer.Option(
            "--min-part-hours",
            min=0,
            max=8760,
            help="Hours a partition stays put after one of its replicas moved (0: no guard).",
        ),
    ] = 0,
) -> None:
    """Start a new, empty ring builder."""
    store = _store(data_dir)
    if ((store / BUILDER_FILE).exists() or (store / RING_FILE).exists()) and not force:
        raise _fail(f"a ring already exists in {store} (--force replaces it)")
    b = RingBuilder(
        part_power=part_power, replicas=replicas, seed=secrets.randbits(32), min_part_hours=min_part_hours
    )
    b.hash_suffix = secrets.token_hex(8)
    b.save(store / BUILDER_FILE)
    typer.echo(
        f"created builder: {1 << part_power} partitions, {replicas} replicas, min_part_hours {min_part_hours}"
    )


@ring_app.command("set-min-part-hours")
def set_min_part_hours(
    hours: Annotated[int, typer.Argument(min=0, max=8760, help="Hours; 0 turns the guard off.")],
    data_dir: DataDir = None,
) -> None:
    """Set how long a partition stays put after one of its replicas moved."""
    store = _store(data_dir)
    b = _builder(store)
    b.set_min_part_hours(hours)
    b.save(store / BUILDER_FILE)
    typer.echo(f"min_part_hours {hours}")


@ring_app.command("pretend-min-part-hours-passed")
def pretend_min_part_hours_passed(data_dir: DataDir = None) -> None:
    """Forget when partitions last moved: the next rebalance may move any of them (use with care:
    a partition's replicas may then move before the last move was replicated)."""
    store = _store(data_dir)
    b = _builder(store)
    b.pretend_min_part_hours_passed()
    b.save(store / BUILDER_FILE)
    typer.echo("partitions may move at the next rebalance")


@ring_app.command("add")
def add(
    node: Annotated[str, typer.Argument(help="Storage node name, e.g. node3.")],
    device: Annotated[str, typer.Argument(help="Device (directory) name on that node, e.g. d1.")],
    data_dir: DataDir = None,
    zone: Annotated[int, typer.Option("--zone", min=0)] = 1,
    region: Annotated[int, typer.Option("--region", min=0)] = 1,
    weight: Annotated[float, typer.Option("--weight", min=0)] = 100.0,
    url: Annotated[
        str, typer.Option("--url", help="The node's base URL; empty: served in the cloud's process.")
    ] = "",
) -> None:
    """Add a device (takes partitions at the next rebalance)."""
    store = _store(data_dir)
    b = _builder(store)
    try:
        dev = b.add_dev(node, device, zone=zone, region=region, weight=weight, url=url.rstrip("/"))
    except ValueError as exc:
        raise _fail(str(exc)) from None
    b.save(store / BUILDER_FILE)
    typer.echo(f"added device {dev.id}: {node}/{device} region {region} zone {zone} weight {weight:g}")


@ring_app.command("remove")
def remove(
    dev_id: Annotated[int, typer.Argument(help="Device id (see `show`).")], data_dir: DataDir = None
) -> None:
    """Remove a device (its partitions move at the next rebalance)."""
    store = _store(data_dir)
    b = _builder(store)
    try:
        b.remove_dev(dev_id)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    b.save(store / BUILDER_FILE)
    typer.echo(f"removed device {dev_id}")


@ring_app.command("set-weight")
def set_weight(
    dev_id: Annotated[int, typer.Argument(help="Device id (see `show`).")],
    weight: Annotated[float, typer.Argument(help="New weight (0 drains the device).")],
    data_dir: DataDir = None,
) -> None:
    """Change a device's weight (partitions follow at the next rebalance)."""
    store = _store(data_dir)
    b = _builder(store)
    try:
        b.set_weight(dev_id, weight)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    b.save(store / BUILDER_FILE)
    typer.echo(f"device {dev_id} weight {weight:g}")


@ring_app.command("rebalance")
def rebalance(data_dir: DataDir = None) -> None:
    """Assign partitions with minimal movement and write the next version of the ring file."""
    store = _store(data_dir)
    b = _builder(store)
    try:
        moved = b.rebalance()
        ring = b.get_ring()
    except ValueError as exc:
        raise _fail(str(exc)) from None
    total = ring.partition_count * ring.replicas
    b.save(store / BUILDER_FILE)
    ring.save(store / RING_FILE)
    typer.echo(
        f"ring version {ring.version}: {moved} of {total} partition replicas moved "
        f"({moved / total * 100:.1f}%), balance {b.balance():.2f}%"
    )
    if b.held_back:
        typer.echo(
            f"{b.held_back} partition replicas stay for now (min_part_hours {b.min_part_hours}: at most "
            "one replica of a partition moves per rebalance, none within that time of its last move); "
            "rebalance again later"
        )


@ring_app.command("show")
def show(data_dir: DataDir = None) -> None:
    """Print the ring: devices, weights, partitions held."""
    store = _store(data_dir)
    b = _builder(store)
    ring_version = Ring.load(store / RING_FILE).version if (store / RING_FILE).exists() else None
    counts = b.parts_per_dev()
    typer.echo(
        f"builder version {b.version} (ring file version {ring_version}), {1 << b.part_power} partitions, "
        f"{b.replicas} replicas, balance {b.balance():.2f}%, min_part_hours {b.min_part_hours} "
        f"({len(b.locked_parts())} partitions moved within it)"
    )
    typer.echo(
        f"{'id':>3} {'region':>6} {'zone':>4} {'node':<12} {'device':<8} {'weight':>8} {'parts':>6}  url"
    )
    for dev in sorted(b.devs.values(), key=lambda d: d.id):
        typer.echo(
            f"{dev.id:>3} {dev.region:>6} {dev.zone:>4} {dev.node:<12} {dev.device:<8} {dev.weight:>8g}"
            f" {counts.get(dev.id, 0):>6}  {dev.url or '(in-process)'}"
        )


@ring_app.command("push")
def push(data_dir: DataDir = None) -> None:
    """Send the ring file to every node with a URL (a node keeps it when it is newer)."""
    import httpx

    store = _store(data_dir)
    path = store / RING_FILE
    if not path.exists():
        raise _fail(f"no ring file in {store}: rebalance first")
    ring = Ring.load(path)
    data = path.read_bytes()
    failed = 0
    for url in sorted({d.url for d in ring.devs.values() if d.url}):
        try:
            resp = httpx.put(f"{url}/ring", content=data, timeout=10)
            typer.echo(f"{url}: {'taken' if resp.status_code == 201 else 'already current'} "
                       f"(node has version {resp.headers.get('x-ring-version')})")  # fmt: skip
            failed += resp.status_code >= 300 and resp.status_code != 202
        except httpx.HTTPError as exc:
            typer.echo(f"{url}: unreachable ({exc})")
            failed += 1
    if failed:
        raise typer.Exit(1)


@app.command("node")
def node(
    name: Annotated[str, typer.Option("--name", help="This node's name in the ring.")],
    data_dir: DataDir = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 6200,
) -> None:
    """Serve one storage node (and its replicator, auditor, updater, expirer, container sync) in the
    foreground."""
    import uvicorn

    from kumo.common.config import Settings
    from kumo.object_store.node_server import ensure_logging, storage_node_app
    from kumo.object_store.sync_realms import load as load_sync_realms

    settings = Settings.load(data_dir=data_dir) if data_dir else Settings.load()
    ensure_logging(settings.log_level)
    try:
        app = storage_node_app(settings.data_dir, name, settings.object_store, load_sync_realms(settings))
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    os.environ.setdefault("KUMO_DATA_DIR", str(settings.data_dir))
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on")
