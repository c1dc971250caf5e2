"""Compute's tables (all prefixed ``compute_``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kumo.common.db import Base


class ComputeBase(Base):
    __abstract__ = True


class Flavor(ComputeBase):
    __tablename__ = "compute_flavors"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # flavorid (string, "1" or a uuid)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    ram: Mapped[int] = mapped_column(Integer)
    vcpus: Mapped[int] = mapped_column(Integer)
    disk: Mapped[int] = mapped_column(Integer)
    ephemeral: Mapped[int] = mapped_column(Integer, default=0)
    swap: Mapped[int] = mapped_column(Integer, default=0)
    rxtx_factor: Mapped[float] = mapped_column(Float, default=1.0)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    extra_specs: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    access: Mapped[list[str]] = mapped_column(JSON, default=list)  # project ids (private flavors)
    seq: Mapped[int] = mapped_column(Integer, index=True, default=0)  # creation order for sorting
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Keypair(ComputeBase):
    __tablename__ = "compute_keypairs"
    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(10), default="ssh")
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Server(ComputeBase):
    __tablename__ = "compute_servers"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    user_id: Mapped[str] = mapped_column(String(255))
    image_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    flavor_id: Mapped[str] = mapped_column(String(255), index=True)
    flavor: Mapped[dict[str, Any]] = mapped_column(JSON)  # snapshot of the flavor at boot/resize
    old_flavor: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    vm_state: Mapped[str] = mapped_column(String(30), index=True)
    task_state: Mapped[str | None] = mapped_column(String(30), nullable=True)
    power_state: Mapped[int] = mapped_column(Integer, default=0)
    # what the agent should do next: {"op": ..., "seq": n, ...}; None when settled
    pending: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    op_seq: Mapped[int] = mapped_column(Integer, default=0)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    key_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    key_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    user_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    security_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    networks: Mapped[Any] = mapped_column(JSON, nullable=True)  # the request's networks
    ports: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # bound ports (id, net, ips, mac)
    block_devices: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    config_drive: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    hostname: Mapped[str] = mapped_column(String(255), default="")
    access_ipv4: Mapped[str] = mapped_column(String(64), default="")
    access_ipv6: Mapped[str] = mapped_column(String(64), default="")
    disk_config: Mapped[str] = mapped_column(String(16), default="MANUAL")
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    locked_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    reservation_id: Mapped[str] = mapped_column(String(64), default="")
    launch_index: Mapped[int] = mapped_column(Integer, default=0)
    fault: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    group_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    admin_pass: Mapped[str | None] = mapped_column(String(255), nullable=True)
    console: Mapped[str] = mapped_column(Text, default="")
    system_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # e.g. shelved_image_id
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    launched_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    terminated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class InstanceAction(ComputeBase):
    __tablename__ = "compute_instance_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    server_id: Mapped[str] = mapped_column(String(36), index=True)
    action: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    project_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(255))
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    start_time: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class ServerGroup(ComputeBase):
    __tablename__ = "compute_server_groups"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    user_id: Mapped[str] = mapped_column(String(255))
    policy: Mapped[str] = mapped_column(String(32))
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    members: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Quota(ComputeBase):
    __tablename__ = "compute_quotas"
    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True, default="")
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


class QuotaClass(ComputeBase):
    __tablename__ = "compute_quota_classes"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


class ComputeService(ComputeBase):
    """A nova-compute (or other binary) service record, one per host."""

    __tablename__ = "compute_services"
    __table_args__ = (UniqueConstraint("host", "binary"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    binary: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(64), default="compute")
    zone: Mapped[str] = mapped_column(String(255), default="nova")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    forced_down: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class ComputeNode(ComputeBase):
    """A hypervisor: inventory and usage (claims are recorded here, under a row lock)."""

    __tablename__ = "compute_nodes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    host: Mapped[str] = mapped_column(String(255), unique=True)
    hypervisor_hostname: Mapped[str] = mapped_column(String(255))
    hypervisor_type: Mapped[str] = mapped_column(String(64))
    hypervisor_version: Mapped[int] = mapped_column(Integer, default=1000)
    host_ip: Mapped[str] = mapped_column(String(64), default="127.0.0.1")
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    local_gb: Mapped[int] = mapped_column(Integer)
    vcpus_used: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb_used: Mapped[int] = mapped_column(Integer, default=0)
    local_gb_used: Mapped[int] = mapped_column(Integer, default=0)
    running_vms: Mapped[int] = mapped_column(Integer, default=0)
    cpu_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    uptime: Mapped[str | None] = mapped_column(String(255), nullable=True)  # as the host's agent last said
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class Migration(ComputeBase):
    __tablename__ = "compute_migrations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    server_id: Mapped[str] = mapped_column(String(36), index=True)
    project_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(255))
    migration_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    source_compute: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dest_compute: Mapped[str | None] = mapped_column(String(255), nullable=True)
    source_node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dest_node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    old_flavor_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    new_flavor_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class Counter(ComputeBase):
    """Monotonic counters (server and flavor sequence numbers)."""

    __tablename__ = "compute_counters"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Aggregate(ComputeBase):
    """Host aggregates; an aggregate's availability zone becomes its hosts' zone."""

    __tablename__ = "compute_aggregates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    hosts: Mapped[list[str]] = mapped_column(JSON, default=list)
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ConsoleAuthToken(ComputeBase):
    """A remote-console access token: only its SHA-256 is stored; one use, then gone."""

    __tablename__ = "compute_console_auth_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    server_id: Mapped[str] = mapped_column(String(36), index=True)
    console_type: Mapped[str] = mapped_column(String(32))  # novnc | serial | spice-html5 ...
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)  # the compute host
    port: Mapped[int] = mapped_column(Integer, default=0)
    internal_access_path: Mapped[str | None] = mapped_column(String(255), nullable=True)
    access_url_base: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class VolumeAttachment(ComputeBase):
    """A volume block-device mapping of a server (Nova's BDM with destination_type=volume).

    ``status``: attaching (Cinder attachment reserved/updated, agent op pending) → attached;
    detaching (agent op pending) → detached (the Cinder attachment is being deleted, the row
    goes away); error (the attach failed; the row goes away once Cinder is rolled back).
    """

    __tablename__ = "compute_volume_attachments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)  # the BDM uuid
    server_id: Mapped[str] = mapped_column(String(36), index=True)
    volume_id: Mapped[str] = mapped_column(String(36), index=True)
    attachment_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # Cinder's
    device: Mapped[str | None] = mapped_column(String(255), nullable=True)
    tag: Mapped[str | None] = mapped_column(String(60), nullable=True)
    delete_on_termination: Mapped[bool] = mapped_column(Boolean, default=False)
    boot_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="attaching")
    connection_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class ImageCacheEntry(ComputeBase):
    """An image a host was asked to pre-cache (2.81 ``POST /os-aggregates/{id}/images``).

    ``status``: pending (the host's agent has not fetched it yet) → cached, or error
    (``message`` says why). A new request for the same host and image starts over.
    """

    __tablename__ = "compute_image_cache"
    __table_args__ = (UniqueConstraint("host", "image_id", name="uq_compute_image_cache_host_image"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    image_id: Mapped[str] = mapped_column(String(36))
    aggregate_id: Mapped[int] = mapped_column(Integer)
    checksum: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
