"""One settings object for the whole of kumo.

Values come, lowest priority first, from the defaults below, a TOML file
(``<data_dir>/kumo.toml`` or ``--config``), ``KUMO_*`` environment variables
(nested with ``__``, e.g. ``KUMO_IDENTITY__TOKEN_EXPIRATION=600``) and finally
explicit overrides (command-line flags). Nothing is read at import time.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kumo"


class DatabaseSettings(BaseModel):
    # Empty: one embedded SQLite file per service in the data dir.
    # Otherwise a SQLAlchemy URL shared by every service (each owns its tables),
    # e.g. postgresql+psycopg://kumo:secret@db/kumo
    url: str = ""
    echo: bool = False


class IdentitySettings(BaseModel):
    token_expiration: int = Field(3600, ge=60, description="token lifetime in seconds")
    password_hash_algorithm: str = Field("bcrypt", pattern="^bcrypt$")
    password_hash_rounds: int = Field(12, ge=4, le=31)
    max_active_keys: int = Field(3, ge=2)
    allow_expired_window: int = 172800
    # Bootstrap values, used on the first start only.
    admin_password: str = ""
    demo_password: str = ""
    region: str = "RegionOne"
    # Keystone's [security_compliance] options, same names and defaults (all disabled).
    lockout_failure_attempts: int | None = Field(None, ge=1, description="failed logins before lockout")
    lockout_duration: int | None = Field(1800, ge=1, description="seconds a locked user stays locked")
    unique_last_password_count: int = Field(0, ge=0, description="new password must differ from these")
    minimum_password_age: int = Field(0, ge=0, description="days before a self-service change")
    password_expires_days: int | None = Field(None, ge=1, description="days a password is valid")
    change_password_upon_first_use: bool = False
    password_regex: str | None = None
    password_regex_description: str | None = None

    @field_validator("password_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value:
            try:
                re.compile(value)  # a bad pattern fails at start, not on every password change
            except re.error as exc:
                raise ValueError(f"password_regex is not a valid regular expression: {exc}") from None
        return value or None


class AuthSettings(BaseModel):
    # How long another service trusts a validated token before asking identity
    # again; revocations reach in-process services immediately regardless.
    token_cache_seconds: float = 300.0
    revocation_poll_seconds: float = 2.0


class ImageSettings(BaseModel):
    # The default store for new image data: "file" (under <data_dir>/images) or "swift"
    # (kumo's object storage, through the Swift API found in the catalog).
    store: str = Field("file", pattern="^(file|swift)$")
    # Enabled stores (Glance's enabled_backends); empty: "file", plus "swift" when this
    # cloud runs object storage, plus "web" (read-only http(s) locations, Glance's http
    # store). Image data may live in several at once (copy-image).
    enabled_stores: list[str] = []
    # Glance's show_multiple_locations: image bodies list their locations, and JSON patch
    # may add, replace and remove them (http(s) URLs, or the image's own copies).
    show_multiple_locations: bool = False
    # Glance's store weights: an image's stores are listed (and read) highest weight first.
    store_weights: dict[str, int] = {}
    # This node's image cache (/v2/cache, admins only): local copies that serve downloads.
    cache_enabled: bool = True
    # The object store's account: a user and project the image service stores data as.
    # An empty password means the bootstrap admin password kept in the data dir.
    swift_user: str = "admin"
    swift_password: str = ""
    swift_project: str = "admin"
    swift_container: str = "kumo-images"
    swift_segment_size: int = Field(64 * 1024 * 1024, ge=1024 * 1024)  # static large object segments
    # web-download: only http(s) to these ports; private, loopback and link-local addresses are
    # refused unless a host or address is listed in web_download_allow_hosts (a listed host may
    # also use any port).
    web_download_allowed_ports: list[int] = [80, 443]
    web_download_allow_hosts: list[str] = []
    web_download_deny_hosts: list[str] = []
    web_download_max_bytes: int = Field(20 * 1024**3, ge=1)
    web_download_timeout: float = Field(60.0, gt=0)
    # Per-project quotas (like Glance's unified limits); -1 means unlimited.
    image_count_total: int = -1  # images a project may own
    image_size_total: int = -1  # bytes of image data a project may store
    image_stage_total: int = -1  # bytes a project may have staged for import
    image_count_uploading: int = -1  # images a project may upload or stage at once
    limit_param_default: int = 25  # page size of GET /v2/images without limit
    api_limit_max: int = 1000


class ComputeSettings(BaseModel):
    # Virt driver of the compute agent: "qemu" (real VMs), "fake" (in-memory, API-only), or
    # "auto" (the default): qemu when this host can run it (root, qemu installed), else fake.
    driver: str = Field("auto", pattern="^(auto|qemu|fake)$")
    accel: str = Field("tcg", pattern="^(tcg|kvm|auto)$")  # qemu: auto = KVM only after a real probe boot
    shutdown_timeout: float = Field(30.0, ge=0)  # qemu: seconds a guest gets to power off (ACPI) before quit
    host: str = ""  # this node's compute host name; defaults to the machine's hostname
    run_agent: bool = True  # all-in-one: run the compute agent in-process
    # all-in-one with the fake driver only: this many compute hosts in-process (<host>, <host>-2, ...),
    # each its own agent and FakeDriver, so migrations and multi-host scheduling can be exercised
    fake_hosts: int = Field(1, ge=1, le=16)
    cpu_allocation_ratio: float = 16.0
    ram_allocation_ratio: float = 1.5
    disk_allocation_ratio: float = 1.0
    weigher: str = Field("spread", pattern="^(spread|pack)$")
    service_down_time: int = 60  # seconds without a heartbeat before a service shows "down"
    heartbeat_interval: float = 10.0
    max_user_data_bytes: int = 65535
    dhcp_domain: str = "novalocal"  # metadata hostnames are <hostname>.<dhcp_domain> (Nova's [api] dhcp_domain)
    console_token_ttl: int = Field(600, ge=1)  # seconds a remote-console URL stays valid (Nova's [consoleauth] token_ttl)
    novnc_dir: str = "/usr/share/novnc"  # noVNC's web files (Debian package novnc), served under /compute/console/
    # where spice-direct console URLs (2.99) point: the operator's SPICE proxy, which looks the token up
    # in os-console-auth-tokens and connects to the VM's SPICE port itself (Nova's [spice] spice_direct_proxy_base_url)
    spice_direct_proxy_base_url: str = "http://127.0.0.1:13002/nova"
    spice_enabled: bool = False  # QEMU driver: every VM also gets a ticketless SPICE display on 127.0.0.1 (Nova's [spice] enabled)
    agent_secret: str = ""  # shared secret of the agent API; generated in the data dir when empty
    # Nova's [DEFAULT] vif_plugging_timeout / vif_plugging_is_fatal: a new guest starts paused until
    # the network reports each bound port plugged (network-vif-plugged); 0 = do not wait
    vif_plugging_timeout: float = Field(300.0, ge=0)
    vif_plugging_is_fatal: bool = True
    fake_vif_plugging: bool = False  # fake driver: wait for network-vif-plugged like qemu does (tests)


class ObjectStoreSettings(BaseModel):
    # Storage nodes of the all-in-one ring created on first start (replicas: min(nodes, 3)).
    nodes: int = Field(1, ge=1, le=16)
    # Background daemons on every storage node; intervals in seconds between passes.
    replicator_interval: float = Field(30.0, gt=0)
    auditor_interval: float = Field(300.0, gt=0)
    updater_interval: float = Field(30.0, gt=0)
    expirer_interval: float = Field(30.0, gt=0)
    auditor_files_per_second: float = Field(20.0, gt=0)  # rate limits of the auditor
    auditor_bytes_per_second: float = Field(10_000_000.0, gt=0)
    replicator_concurrency: int = Field(4, ge=1)
    reclaim_age: float = Field(604800.0, ge=0)  # tombstones older than this are removed
    ring_check_interval: float = Field(5.0, gt=0)  # seconds between looks at the ring file
    run_daemons: bool = True  # all-in-one: run the daemons of in-process nodes
    # Container sync (X-Container-Sync-To / -Key): seconds between passes of the sync daemon.
    container_sync_interval: float = Field(10.0, gt=0)
    # Full-URL sync targets (old style) may only name these hosts; old-style sync requests are
    # only taken from these addresses. The default allows this host only ("localhost": loopback).
    container_sync_hosts: list[str] = ["127.0.0.1", "::1", "localhost"]
    container_sync_allow_full_urls: bool = True  # False: only //realm/cluster/account/container
    # Realms: Swift's container-sync-realms.conf format ([REALM] key=, key2=, cluster_NAME=URL).
    container_sync_realms_file: str = ""
    # This cloud's own realm and cluster (sync between its own containers); "" realm: none.
    # The realm key is generated in <data_dir>/object-store/container-sync-realm.key when empty
    # (give every storage node the same key in split deployments); the cluster URL defaults to
    # <public_url>/object-store/v1/.
    container_sync_realm: str = "kumo"
    container_sync_cluster: str = "local"
    container_sync_realm_key: str = ""
    container_sync_cluster_url: str = ""


class BlockStorageSettings(BaseModel):
    # Back end of the volume agent: "file" (qcow2 or sparse raw files under <data_dir>/volumes)
    # or "lvm" (thin LVs in lvm_volume_group / lvm_thin_pool).
    backend: str = "file"
    file_format: str = Field("qcow2", pattern="^(qcow2|raw)$")
    capacity_gb: int = 0  # the file back end's pool size; 0: the free space of the data dir's disk
    lvm_volume_group: str = ""
    lvm_thin_pool: str = "kumo-thinpool"
    host: str = ""  # this node's storage host name; defaults to the machine's hostname
    zone: str = "nova"
    run_agent: bool = True  # all-in-one: run the volume agent in-process
    heartbeat_interval: float = 10.0
    service_down_time: int = 60
    agent_secret: str = ""  # shared secret of the agent API; generated in the data dir when empty
    # Multi-node attach: the volume agent exports volumes to remote compute hosts over NBD
    # (qemu-storage-daemon) on nbd_address:nbd_port (node.address when empty); 0 = off.
    nbd_port: int = Field(0, ge=0, le=65535)
    nbd_address: str = ""
    default_volume_type: str = "__DEFAULT__"
    backup_container: str = "volumebackups"
    # Default quotas of every project (-1: unlimited), as cinder.conf's quota_* options.
    quota_volumes: int = 10
    quota_snapshots: int = 10
    quota_gigabytes: int = 1000
    quota_backups: int = 10
    quota_backup_gigabytes: int = 1000
    quota_groups: int = 10
    quota_per_volume_gigabytes: int = -1


class NodeSettings(BaseModel):
    # Multi-node deployments (kumo/runtime/node, docs/multinode.md). Written by `kumo join`.
    name: str = ""  # this node's name in the registry; defaults to the machine's hostname
    roles: list[str] = []  # controller | compute | network | storage
    controller_url: str = ""  # where this node reaches the controller (joined nodes)
    address: str = ""  # this node's address as other nodes reach it (VXLAN endpoint, storage)
    heartbeat_interval: float = Field(10.0, gt=0)
    down_after: float = Field(60.0, gt=0)  # seconds without a heartbeat before a node shows "down"
    ca_file: str = ""  # CA bundle for a controller behind TLS ("" = the system's)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KUMO_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = 5100
    public_url: str = ""  # defaults to http://host:port
    identity_url: str = ""  # where identity answers; defaults to <public_url>/identity
    workers: int = 1
    log_level: str = "info"
    database: DatabaseSettings = DatabaseSettings()
    identity: IdentitySettings = IdentitySettings()
    auth: AuthSettings = AuthSettings()
    image: ImageSettings = ImageSettings()
    compute: ComputeSettings = ComputeSettings()
    block_storage: BlockStorageSettings = BlockStorageSettings()
    object_store: ObjectStoreSettings = ObjectStoreSettings()
    node: NodeSettings = NodeSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def database_url(self, service: str) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{self.data_dir / (service + '.db')}"

    @classmethod
    def load(cls, config_file: str | Path | None = None, **overrides: Any) -> Settings:
        """Build the settings: file, then environment, then ``overrides`` (None values ignored)."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        _TomlSource.path = Path(config_file) if config_file else None
        try:
            return cls(**clean)
        finally:
            _TomlSource.path = None


class _TomlSource(PydanticBaseSettingsSource):
    path: Path | None = None

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = self.path
        if path is None:
            data_dir = os.environ.get("KUMO_DATA_DIR")
            candidate = Path(data_dir) if data_dir else default_data_dir()
            path = candidate / "kumo.toml"
        if not path.is_file():
            return {}
        with path.open("rb") as fh:
            return tomllib.load(fh)
