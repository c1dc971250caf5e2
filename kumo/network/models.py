"""The network service's tables (all prefixed ``network_``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kumo.common.db import Base


class NetworkBase(Base):
    __abstract__ = True


class _Standard:
    """Neutron's standard attributes: every resource has them."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class Network(_Standard, NetworkBase):
    __tablename__ = "network_networks"
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    mtu: Mapped[int] = mapped_column(Integer, default=1500)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    network_type: Mapped[str] = mapped_column(String(32))
    physical_network: Mapped[str | None] = mapped_column(String(64), nullable=True)
    segmentation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # unique per segment: "vxlan:1001", "flat:public", "local:<id>"
    segment_key: Mapped[str] = mapped_column(String(128), unique=True)
    availability_zone_hints: Mapped[list[str]] = mapped_column(JSON, default=list)
    dns_domain: Mapped[str] = mapped_column(String(255), default="")


class Subnet(_Standard, NetworkBase):
    __tablename__ = "network_subnets"
    network_id: Mapped[str] = mapped_column(ForeignKey("network_networks.id", ondelete="CASCADE"), index=True)
    ip_version: Mapped[int] = mapped_column(Integer)
    cidr: Mapped[str] = mapped_column(String(64))
    gateway_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    allocation_pools: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    dns_nameservers: Mapped[list[str]] = mapped_column(JSON, default=list)
    host_routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    ipv6_ra_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ipv6_address_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    subnetpool_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    service_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    segment_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    dns_publish_fixed_ip: Mapped[bool] = mapped_column(Boolean, default=False)


class SubnetPool(_Standard, NetworkBase):
    __tablename__ = "network_subnetpools"
    ip_version: Mapped[int] = mapped_column(Integer)
    prefixes: Mapped[list[str]] = mapped_column(JSON, default=list)
    default_prefixlen: Mapped[int] = mapped_column(Integer)
    min_prefixlen: Mapped[int] = mapped_column(Integer)
    max_prefixlen: Mapped[int] = mapped_column(Integer)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    default_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)
    address_scope_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class Port(_Standard, NetworkBase):
    __tablename__ = "network_ports"
    __table_args__ = (UniqueConstraint("network_id", "mac_address", name="uq_network_ports_mac"),)
    network_id: Mapped[str] = mapped_column(ForeignKey("network_networks.id", ondelete="CASCADE"), index=True)
    mac_address: Mapped[str] = mapped_column(String(32))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    device_owner: Mapped[str] = mapped_column(String(255), default="", index=True)
    device_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    binding_host_id: Mapped[str] = mapped_column(String(255), default="")
    binding_vnic_type: Mapped[str] = mapped_column(String(64), default="normal")
    binding_profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    binding_vif_type: Mapped[str] = mapped_column(String(64), default="unbound")
    binding_vif_details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    security_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    allowed_address_pairs: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    extra_dhcp_opts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    dns_name: Mapped[str] = mapped_column(String(255), default="")
    propagate_uplink_status: Mapped[bool] = mapped_column(Boolean, default=False)


class IPAllocation(NetworkBase):
    """One fixed IP of a port. The primary key makes a duplicate address impossible."""

    __tablename__ = "network_ipallocations"
    subnet_id: Mapped[str] = mapped_column(
        ForeignKey("network_subnets.id", ondelete="CASCADE"), primary_key=True
    )
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    port_id: Mapped[str] = mapped_column(ForeignKey("network_ports.id", ondelete="CASCADE"), index=True)
    network_id: Mapped[str] = mapped_column(String(36), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Router(_Standard, NetworkBase):
    __tablename__ = "network_routers"
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    gw_network_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    gw_port_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    enable_snat: Mapped[bool] = mapped_column(Boolean, default=True)
    routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    distributed: Mapped[bool] = mapped_column(Boolean, default=False)
    ha: Mapped[bool] = mapped_column(Boolean, default=False)
    availability_zone_hints: Mapped[list[str]] = mapped_column(JSON, default=list)


class FloatingIP(_Standard, NetworkBase):
    __tablename__ = "network_floatingips"
    floating_network_id: Mapped[str] = mapped_column(String(36), index=True)
    floating_ip_address: Mapped[str] = mapped_column(String(64))
    floating_port_id: Mapped[str] = mapped_column(String(36))
    port_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    router_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    dns_name: Mapped[str] = mapped_column(String(255), default="")
    dns_domain: Mapped[str] = mapped_column(String(255), default="")


class SecurityGroup(_Standard, NetworkBase):
    __tablename__ = "network_security_groups"
    stateful: Mapped[bool] = mapped_column(Boolean, default=True)


class DefaultSecurityGroup(NetworkBase):
    """One ``default`` group per project; the primary key settles creation races."""

    __tablename__ = "network_default_security_groups"
    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        ForeignKey("network_security_groups.id", ondelete="CASCADE"), unique=True
    )


class SecurityGroupRule(NetworkBase):
    __tablename__ = "network_security_group_rules"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        ForeignKey("network_security_groups.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    direction: Mapped[str] = mapped_column(String(16))
    ethertype: Mapped[str] = mapped_column(String(8))
    protocol: Mapped[str | None] = mapped_column(String(40), nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    remote_group_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    remote_address_group_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class MeteringLabel(NetworkBase):
    __tablename__ = "network_metering_labels"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(1024), default="")
    shared: Mapped[bool] = mapped_column(Boolean, default=False)


class MeteringLabelRule(NetworkBase):
    __tablename__ = "network_metering_label_rules"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    metering_label_id: Mapped[str] = mapped_column(
        ForeignKey("network_metering_labels.id", ondelete="CASCADE"), index=True
    )
    direction: Mapped[str] = mapped_column(String(16))
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    destination_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Quota(NetworkBase):
    __tablename__ = "network_quotas"
    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    limit: Mapped[int] = mapped_column(Integer)


class Agent(NetworkBase):
    __tablename__ = "network_agents"
    __table_args__ = (UniqueConstraint("agent_type", "host", name="uq_network_agents_type_host"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agent_type: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255), default="N/A")
    host: Mapped[str] = mapped_column(String(255))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    configurations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    resources_synced: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    heartbeat_timestamp: Mapped[datetime] = mapped_column(DateTime)


class NetworkDhcpAgent(NetworkBase):
    """Which DHCP agent serves which network (dhcp_agent_scheduler)."""

    __tablename__ = "network_dhcp_bindings"
    network_id: Mapped[str] = mapped_column(
        ForeignKey("network_networks.id", ondelete="CASCADE"), primary_key=True
    )
    agent_id: Mapped[str] = mapped_column(ForeignKey("network_agents.id", ondelete="CASCADE"), primary_key=True)


class Meta(NetworkBase):
    """Small key/value facts: the global revision counter, whether bootstrap ran."""

    __tablename__ = "network_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")


class Revision(NetworkBase):
    """The global revision counter agents long-poll on (one row, id 1)."""

    __tablename__ = "network_revision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
