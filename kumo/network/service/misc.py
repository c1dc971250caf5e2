"""Quotas, agents and their scheduler views, tags, IP availability, metering,
and the agent's desired-state document."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kumo.common.context import RequestContext
from kumo.network import ipam
from kumo.network import models as m
from kumo.network.errors import bad, conflict, not_found
from kumo.network.policies import can_read, enforce_admin, enforce_write, is_admin, is_service
from kumo.network.schemas import check_keys, invalid, to_bool, to_int, to_str, to_uuid
from kumo.network.service.core import iso, new_id, now
from kumo.network.service.floatingips import FloatingIPs

QUOTA_MODELS = {
    "network": m.Network, "subnet": m.Subnet, "subnetpool": m.SubnetPool, "port": m.Port, "router": m.Router,
    "floatingip": m.FloatingIP, "security_group": m.SecurityGroup, "security_group_rule": m.SecurityGroupRule,
}
TAGGABLE = {
    "networks": (m.Network, "network"), "subnets": (m.Subnet, "subnet"), "ports": (m.Port, "port"),
    "routers": (m.Router, "router"), "subnetpools": (m.SubnetPool, "subnetpool"),
    "floatingips": (m.FloatingIP, "floatingip"), "security-groups": (m.SecurityGroup, "security_group"),
}
AGENT_TYPES = {"Linux bridge agent": "N/A", "DHCP agent": "dhcp_agent", "L3 agent": "l3_agent",
               "Metadata agent": "N/A", "Open vSwitch agent": "N/A"}


class Misc(FloatingIPs):
    # -- quotas ------------------------------------------------------------------------------

    def _quota_of(self, s: Session, project_id: str) -> dict[str, int]:
        return {r: self.quota_limit(s, project_id, r) for r in QUOTA_MODELS}

    def list_quotas(self, ctx: RequestContext) -> list[dict[str, Any]]:
        enforce_admin(ctx, "get_quota")

        def run(s: Session) -> list[dict[str, Any]]:
            projects = sorted(set(s.scalars(select(m.Quota.project_id))))
            return [{**self._quota_of(s, p), "project_id": p, "tenant_id": p} for p in projects]

        return self.read(run)

    def show_quota(self, ctx: RequestContext, project_id: str) -> dict[str, Any]:
        if not (is_admin(ctx) or can_read(ctx, project_id)):
            raise bad("Only admin can view or configure quota", "AdminRequired") if False else \
                self._forbid("get_quota")
        return self.read(lambda s: self._quota_of(s, project_id))

    @staticmethod
    def _forbid(action: str) -> Exception:
        from kumo.network.errors import forbidden

        return forbidden(f"(rule:{action}) is disallowed by policy", "PolicyNotAuthorized")

    def default_quota(self, ctx: RequestContext, project_id: str) -> dict[str, Any]:
        if not (is_admin(ctx) or can_read(ctx, project_id)):
            raise self._forbid("get_quota")
        return {r: int(getattr(self.settings.quotas, r)) for r in QUOTA_MODELS}

    def quota_details(self, ctx: RequestContext, project_id: str) -> dict[str, Any]:
        if not (is_admin(ctx) or can_read(ctx, project_id)):
            raise self._forbid("get_quota")

        def run(s: Session) -> dict[str, Any]:
            out = {}
            for r, model in QUOTA_MODELS.items():
                used = s.scalar(select(func.count()).select_from(model).where(model.project_id == project_id)) or 0
                out[r] = {"limit": self.quota_limit(s, project_id, r), "used": used, "reserved": 0}
            return out

        return self.read(run)

    def update_quota(self, ctx: RequestContext, project_id: str, data: dict[str, Any]) -> dict[str, Any]:
        enforce_admin(ctx, "update_quota")
        check_keys(data, (*QUOTA_MODELS, "force", "check_limit", "rbac_policy"))
        values = {k: to_int(v, k, -1) for k, v in data.items() if k in QUOTA_MODELS}

        def run(s: Session) -> dict[str, Any]:
            for resource, limit in values.items():
                row = s.get(m.Quota, (project_id, resource))
                if row is None:
                    s.add(m.Quota(project_id=project_id, resource=resource, limit=limit))
                else:
                    row.limit = limit  # type: ignore[assignment]
            s.flush()
            return self._quota_of(s, project_id)

        return self.tx(run)

    def delete_quota(self, ctx: RequestContext, project_id: str) -> None:
        enforce_admin(ctx, "delete_quota")
        self.tx(lambda s: s.execute(delete(m.Quota).where(m.Quota.project_id == project_id)))

    # -- agents ------------------------------------------------------------------------------

    def render_agent(self, a: m.Agent) -> dict[str, Any]:
        alive = (now() - a.heartbeat_timestamp) <= timedelta(seconds=self.settings.agent_down_time)
        return {
            "id": a.id, "agent_type": a.agent_type, "binary": a.binary, "topic": a.topic, "host": a.host,
            "admin_state_up": a.admin_state_up, "alive": alive, "availability_zone": a.availability_zone,
            "description": a.description, "configurations": dict(a.configurations or {}),
            "created_at": a.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            "started_at": a.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            "heartbeat_timestamp": a.heartbeat_timestamp.strftime("%Y-%m-%d %H:%M:%S"),
            "resources_synced": a.resources_synced, "ha_state": None,
        }

    def list_agents(self, ctx: RequestContext) -> list[dict[str, Any]]:
        if not is_admin(ctx):
            return []
        return self.read(lambda s: [self.render_agent(a) for a in s.scalars(select(m.Agent).order_by(
            m.Agent.agent_type, m.Agent.host))])

    def _agent(self, s: Session, ctx: RequestContext, agent_id: Any) -> m.Agent:
        a = s.get(m.Agent, agent_id) if isinstance(agent_id, str) and is_admin(ctx) else None
        if a is None:
            raise not_found("agent", agent_id)
        return a

    def show_agent(self, ctx: RequestContext, agent_id: str) -> dict[str, Any]:
        return self.read(lambda s: self.render_agent(self._agent(s, ctx, agent_id)))

    def update_agent(self, ctx: RequestContext, agent_id: str, data: dict[str, Any]) -> dict[str, Any]:
        enforce_admin(ctx, "update_agent")
        check_keys(data, ("admin_state_up", "description"))

        def run(s: Session) -> dict[str, Any]:
            a = self._agent(s, ctx, agent_id)
            if "admin_state_up" in data:
                a.admin_state_up = to_bool(data["admin_state_up"], "admin_state_up")
            if "description" in data:
                a.description = to_str(data["description"], "description", allow_none=True)
            self.bump(s)
            return self.render_agent(a)

        return self.tx(run)

    def delete_agent(self, ctx: RequestContext, agent_id: str) -> None:
        enforce_admin(ctx, "delete_agent")
        self.tx(lambda s: s.delete(self._agent(s, ctx, agent_id)))

    def report_agent(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        if not is_service(ctx):
            raise self._forbid("report_agent")
        check_keys(data, ("agent_type", "binary", "host", "topic", "availability_zone", "configurations",
                          "start_flag", "description", "resources_synced"))
        for key in ("agent_type", "binary", "host"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise invalid(key, "a non-empty string is required")
        conf = data.get("configurations") or {}
        if not isinstance(conf, dict):
            raise invalid("configurations", "not a JSON object")

        def run(s: Session) -> dict[str, Any]:
            a = s.scalar(select(m.Agent).where(m.Agent.agent_type == data["agent_type"],
                                               m.Agent.host == data["host"]))
            ts = now()
            if a is None:
                zone = data.get("availability_zone")
                if zone is None and data["agent_type"] in ("DHCP agent", "L3 agent"):
                    zone = self.settings.default_availability_zone
                a = m.Agent(id=new_id(), agent_type=data["agent_type"], binary=data["binary"],
                            topic=data.get("topic") or AGENT_TYPES.get(data["agent_type"], "N/A"),
                            host=data["host"], admin_state_up=True, availability_zone=zone, description=None,
                            configurations=conf, resources_synced=None, created_at=ts, started_at=ts,
                            heartbeat_timestamp=ts)
                s.add(a)
                self.bump(s)
            else:
                a.binary = data["binary"]
                if (a.configurations or {}).get("tunnel_ip") != conf.get("tunnel_ip"):
                    self.bump(s)  # the other hosts' VXLAN peers change
                a.configurations = conf
                a.heartbeat_timestamp = ts
                if data.get("start_flag"):
                    a.started_at = ts
                if data.get("availability_zone"):
                    a.availability_zone = data["availability_zone"]
            s.flush()
            return self.render_agent(a)

        return self.tx(run)

    # -- scheduler views ---------------------------------------------------------------------

    def _agents_of_type(self, s: Session, agent_type: str) -> list[m.Agent]:
        return list(s.scalars(select(m.Agent).where(m.Agent.agent_type == agent_type).order_by(m.Agent.host)))

    def dhcp_agents_for_network(self, ctx: RequestContext, network_id: str) -> list[dict[str, Any]]:
        enforce_admin(ctx, "get_dhcp-agents")

        def run(s: Session) -> list[dict[str, Any]]:
            net = self.get_network_row(s, ctx, network_id)
            bound = set(s.scalars(select(m.NetworkDhcpAgent.agent_id).where(m.NetworkDhcpAgent.network_id == net.id)))
            has_dhcp = s.scalar(select(m.Subnet.id).where(m.Subnet.network_id == net.id,
                                                          m.Subnet.enable_dhcp.is_(True)).limit(1))
            agents = self._agents_of_type(s, "DHCP agent")
            return [self.render_agent(a) for a in agents if a.id in bound or (not bound and has_dhcp)]

        return self.read(run)

    def dhcp_networks_for_agent(self, ctx: RequestContext, agent_id: str) -> list[dict[str, Any]]:
        enforce_admin(ctx, "get_dhcp-networks")

        def run(s: Session) -> list[dict[str, Any]]:
            a = self._agent(s, ctx, agent_id)
            out = []
            subs = self._subnet_map(s)
            for net in s.scalars(select(m.Network)):
                bound = set(s.scalars(select(m.NetworkDhcpAgent.agent_id).where(
                    m.NetworkDhcpAgent.network_id == net.id)))
                has_dhcp = s.scalar(select(m.Subnet.id).where(m.Subnet.network_id == net.id,
                                                              m.Subnet.enable_dhcp.is_(True)).limit(1))
                if a.id in bound or (not bound and has_dhcp and a.agent_type == "DHCP agent"):
                    out.append(self.render_network(ctx, net, subs.get(net.id, [])))
            return out

        return self.read(run)

    def add_network_to_dhcp_agent(self, ctx: RequestContext, agent_id: str, data: Any) -> None:
        enforce_admin(ctx, "create_dhcp-network")
        if not isinstance(data, dict) or "network_id" not in data:
            raise bad("network_id is required")

        def run(s: Session) -> None:
            a = self._agent(s, ctx, agent_id)
            if a.agent_type != "DHCP agent":
                raise bad(f"Agent {a.id} is not a valid DHCP Agent or has been disabled", "InvalidDHCPAgent")
            net = self.get_network_row(s, ctx, data["network_id"])
            if s.get(m.NetworkDhcpAgent, (net.id, a.id)) is not None:
                raise conflict("NetworkHostedByDHCPAgent",
                               f"The network {net.id} has been already hosted by the DHCP Agent {a.id}.")
            if not s.scalar(select(m.NetworkDhcpAgent.agent_id).where(m.NetworkDhcpAgent.network_id == net.id)):
                pass
            s.add(m.NetworkDhcpAgent(network_id=net.id, agent_id=a.id))
            self.bump(s)

        self.tx(run)

    def remove_network_from_dhcp_agent(self, ctx: RequestContext, agent_id: str, network_id: str) -> None:
        enforce_admin(ctx, "delete_dhcp-network")

        def run(s: Session) -> None:
            a = self._agent(s, ctx, agent_id)
            row = s.get(m.NetworkDhcpAgent, (network_id, a.id))
            if row is None:
                raise conflict("NetworkNotHostedByDhcpAgent",
                               f"The network {network_id} is not hosted by the DHCP agent {a.id}.")
            s.delete(row)
            self.bump(s)

        self.tx(run)

    def l3_agents_for_router(self, ctx: RequestContext, router_id: str) -> list[dict[str, Any]]:
        enforce_admin(ctx, "get_l3-agents")
        return self.read(lambda s: (self.get_router_row(s, ctx, router_id),
                                    [self.render_agent(a) for a in self._agents_of_type(s, "L3 agent")])[1])

    def routers_for_l3_agent(self, ctx: RequestContext, agent_id: str) -> list[dict[str, Any]]:
        enforce_admin(ctx, "get_l3-routers")

        def run(s: Session) -> list[dict[str, Any]]:
            a = self._agent(s, ctx, agent_id)
            if a.agent_type != "L3 agent":
                return []
            return [self.render_router(ctx, r, s) for r in s.scalars(select(m.Router))]

        return self.read(run)

    # -- tags --------------------------------------------------------------------------------

    def _taggable(self, s: Session, ctx: RequestContext, collection: str, rid: str) -> Any:
        if collection not in TAGGABLE:
            raise not_found("resource", collection)
        model, kind = TAGGABLE[collection]
        getter = {
            "network": self.get_network_row, "subnet": self.get_subnet_row, "port": self.get_port_row,
            "router": self.get_router_row, "subnetpool": self.get_subnetpool_row, "floatingip": self.get_fip_row,
            "security_group": self.get_sg_row,
        }[kind]
        return getter(s, ctx, rid)

    def get_tags(self, ctx: RequestContext, collection: str, rid: str) -> list[str]:
        return self.read(lambda s: list(self._taggable(s, ctx, collection, rid).tags or []))

    def has_tag(self, ctx: RequestContext, collection: str, rid: str, tag: str) -> bool:
        return tag in self.get_tags(ctx, collection, rid)

    def change_tags(self, ctx: RequestContext, collection: str, rid: str, *, replace: list[str] | None = None,
                    add: str | None = None, remove: str | None = None, clear: bool = False) -> list[str]:
        def run(s: Session) -> list[str]:
            row = self._taggable(s, ctx, collection, rid)
            owner = row.project_id
            if collection == "networks" or not owner:
                owner = row.project_id
            enforce_write(ctx, owner, "update_tags")
            tags = list(row.tags or [])
            if replace is not None:
                tags = self.validate_tags(replace)
            elif add is not None:
                self.validate_tags([add])
                if add not in tags:
                    tags.append(add)
            elif remove is not None:
                if remove not in tags:
                    from kumo.network.errors import APIError

                    raise APIError(f"Tag {remove} could not be found.", status=404, fault="TagNotFound")
                tags.remove(remove)
            elif clear:
                tags = []
            if tags != list(row.tags or []):
                row.tags = tags
                self.touch(row)
                self.bump(s)
            return tags

        return self.tx(run)

    # -- IP availability ---------------------------------------------------------------------

    def ip_availabilities(self, ctx: RequestContext) -> list[dict[str, Any]]:
        enforce_admin(ctx, "get_network_ip_availability")

        def run(s: Session) -> list[dict[str, Any]]:
            used: dict[str, int] = {}
            for sid, count in s.execute(select(m.IPAllocation.subnet_id, func.count()).group_by(
                    m.IPAllocation.subnet_id)):
                used[sid] = count
            subs: dict[str, list[m.Subnet]] = {}
            for sub in s.scalars(select(m.Subnet).order_by(m.Subnet.created_at)):
                subs.setdefault(sub.network_id, []).append(sub)
            out = []
            for net in s.scalars(select(m.Network)):
                entries = [{"subnet_id": x.id, "subnet_name": x.name, "cidr": x.cidr, "ip_version": x.ip_version,
                            "total_ips": ipam.pool_size(x.allocation_pools or []), "used_ips": used.get(x.id, 0)}
                           for x in subs.get(net.id, [])]
                out.append({"network_id": net.id, "network_name": net.name, "tenant_id": net.project_id,
                            "project_id": net.project_id, "subnet_ip_availability": entries,
                            "total_ips": sum(e["total_ips"] for e in entries),
                            "used_ips": sum(e["used_ips"] for e in entries)})
            return out

        return self.read(run)

    # -- metering ----------------------------------------------------------------------------

    @staticmethod
    def render_label(label: m.MeteringLabel) -> dict[str, Any]:
        return {"id": label.id, "name": label.name, "description": label.description, "shared": label.shared,
                "tenant_id": label.project_id, "project_id": label.project_id}

    @staticmethod
    def render_label_rule(r: m.MeteringLabelRule) -> dict[str, Any]:
        return {"id": r.id, "metering_label_id": r.metering_label_id, "direction": r.direction,
                "excluded": r.excluded, "remote_ip_prefix": r.remote_ip_prefix,
                "source_ip_prefix": r.source_ip_prefix, "destination_ip_prefix": r.destination_ip_prefix}

    def list_metering_labels(self, ctx: RequestContext) -> list[dict[str, Any]]:
        return self.read(lambda s: [self.render_label(x) for x in s.scalars(select(m.MeteringLabel))
                                    if is_admin(ctx) or can_read(ctx, x.project_id) or x.shared])

    def show_metering_label(self, ctx: RequestContext, lid: str) -> dict[str, Any]:
        def run(s: Session) -> dict[str, Any]:
            x = s.get(m.MeteringLabel, lid)
            if x is None or not (is_admin(ctx) or can_read(ctx, x.project_id) or x.shared):
                raise not_found("metering_label", lid)
            return self.render_label(x)

        return self.read(run)

    def create_metering_label(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        enforce_admin(ctx, "create_metering_label")
        check_keys(data, ("name", "description", "shared", "project_id", "tenant_id"))
        from kumo.network.schemas import project_of

        def run(s: Session) -> dict[str, Any]:
            x = m.MeteringLabel(id=new_id(), project_id=project_of(ctx, data),
                                name=to_str(data.get("name", ""), "name") or "",
                                description=to_str(data.get("description", ""), "description", 1024) or "",
                                shared=to_bool(data.get("shared", False), "shared"))
            s.add(x)
            s.flush()
            return self.render_label(x)

        return self.tx(run)

    def delete_metering_label(self, ctx: RequestContext, lid: str) -> None:
        enforce_admin(ctx, "delete_metering_label")

        def run(s: Session) -> None:
            x = s.get(m.MeteringLabel, lid)
            if x is None:
                raise not_found("metering_label", lid)
            s.execute(delete(m.MeteringLabelRule).where(m.MeteringLabelRule.metering_label_id == lid))
            s.delete(x)

        self.tx(run)

    def list_metering_label_rules(self, ctx: RequestContext) -> list[dict[str, Any]]:
        if not is_admin(ctx):
            return []
        return self.read(lambda s: [self.render_label_rule(x) for x in s.scalars(select(m.MeteringLabelRule))])

    def show_metering_label_rule(self, ctx: RequestContext, rid: str) -> dict[str, Any]:
        def run(s: Session) -> dict[str, Any]:
            x = s.get(m.MeteringLabelRule, rid)
            if x is None or not is_admin(ctx):
                raise not_found("metering_label_rule", rid)
            return self.render_label_rule(x)

        return self.read(run)

    def create_metering_label_rule(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        enforce_admin(ctx, "create_metering_label_rule")
        check_keys(data, ("metering_label_id", "direction", "excluded", "remote_ip_prefix", "source_ip_prefix",
                          "destination_ip_prefix", "project_id", "tenant_id"))
        direction = data.get("direction", "ingress")
        if direction not in ("ingress", "egress"):
            raise invalid("direction", f"'{direction}' is not in ['ingress', 'egress']")
        prefixes = {}
        for key in ("remote_ip_prefix", "source_ip_prefix", "destination_ip_prefix"):
            if data.get(key) is not None:
                prefixes[key] = str(ipam.parse_cidr(data[key], key, strict=False))
        if "remote_ip_prefix" in prefixes and len(prefixes) > 1:
            raise bad("Cannot use 'remote-ip-prefix' in conjunction with 'source-ip-prefix' or "
                      "'destination-ip-prefix'.")

        def run(s: Session) -> dict[str, Any]:
            to_uuid(data.get("metering_label_id"), "metering_label_id")
            if s.get(m.MeteringLabel, data["metering_label_id"]) is None:
                raise not_found("metering_label", data["metering_label_id"])
            x = m.MeteringLabelRule(id=new_id(), metering_label_id=data["metering_label_id"], direction=direction,
                                    excluded=to_bool(data.get("excluded", False), "excluded"),
                                    remote_ip_prefix=prefixes.get("remote_ip_prefix"),
                                    source_ip_prefix=prefixes.get("source_ip_prefix"),
                                    destination_ip_prefix=prefixes.get("destination_ip_prefix"))
            s.add(x)
            s.flush()
            return self.render_label_rule(x)

        return self.tx(run)

    def delete_metering_label_rule(self, ctx: RequestContext, rid: str) -> None:
        enforce_admin(ctx, "delete_metering_label_rule")

        def run(s: Session) -> None:
            x = s.get(m.MeteringLabelRule, rid)
            if x is None:
                raise not_found("metering_label_rule", rid)
            s.delete(x)

        self.tx(run)

    # -- desired state for agents ------------------------------------------------------------

    def agent_state(self, ctx: RequestContext) -> dict[str, Any]:
        if not is_service(ctx):
            raise self._forbid("get_agent_state")

        def run(s: Session) -> dict[str, Any]:
            revision = int(s.scalar(select(m.Revision.revision).where(m.Revision.id == 1)) or 0)
            subs_by_net = self._subnet_map(s)
            nets = list(s.scalars(select(m.Network)))
            mtu = {n.id: n.mtu for n in nets}
            networks = [{
                "id": n.id, "name": n.name, "project_id": n.project_id, "admin_state_up": n.admin_state_up,
                "status": n.status, "mtu": n.mtu, "shared": n.shared, "router_external": n.external,
                "port_security_enabled": n.port_security_enabled,
                "segments": [{"network_type": n.network_type, "physical_network": n.physical_network,
                              "segmentation_id": n.segmentation_id}],
                "subnet_ids": subs_by_net.get(n.id, []),
            } for n in nets]
            subs = {x.id: x for x in s.scalars(select(m.Subnet))}
            subnets = [{
                "id": x.id, "network_id": x.network_id, "name": x.name, "project_id": x.project_id,
                "ip_version": x.ip_version, "cidr": x.cidr, "gateway_ip": x.gateway_ip, "enable_dhcp": x.enable_dhcp,
                "dns_nameservers": list(x.dns_nameservers or []), "host_routes": list(x.host_routes or []),
                "allocation_pools": list(x.allocation_pools or []), "ipv6_ra_mode": x.ipv6_ra_mode,
                "ipv6_address_mode": x.ipv6_address_mode,
            } for x in subs.values()]
            ips = self._ips(s)
            all_ports = list(s.scalars(select(m.Port).order_by(m.Port.created_at)))
            ports = [{
                "id": p.id, "name": p.name, "network_id": p.network_id, "project_id": p.project_id,
                "mac_address": p.mac_address, "fixed_ips": ips.get(p.id, []), "device_owner": p.device_owner,
                "device_id": p.device_id, "admin_state_up": p.admin_state_up, "status": p.status,
                "binding_host_id": p.binding_host_id, "binding_vif_type": p.binding_vif_type,
                "binding_vnic_type": p.binding_vnic_type, "binding_profile": dict(p.binding_profile or {}),
                "binding_vif_details": dict(p.binding_vif_details or {}),
                "port_security_enabled": p.port_security_enabled,
                "security_group_ids": list(p.security_groups or []),
                "allowed_address_pairs": list(p.allowed_address_pairs or []),
                "extra_dhcp_opts": list(p.extra_dhcp_opts or []), "mtu": mtu.get(p.network_id),
                "revision_number": p.revision_number,
            } for p in all_ports]
            ports_by_id = {p.id: p for p in all_ports}
            fips_all = list(s.scalars(select(m.FloatingIP)))
            fip_docs = [{"id": f.id, "floating_ip_address": f.floating_ip_address,
                         "floating_network_id": f.floating_network_id, "port_id": f.port_id,
                         "fixed_ip_address": f.fixed_ip_address, "status": f.status, "router_id": f.router_id,
                         "project_id": f.project_id} for f in fips_all]
            routers = []
            for r in s.scalars(select(m.Router)):
                gw = None
                if r.gw_network_id and r.gw_port_id:
                    gp = ports_by_id.get(r.gw_port_id)
                    gw = {"network_id": r.gw_network_id, "port_id": r.gw_port_id, "enable_snat": r.enable_snat,
                          "mac_address": gp.mac_address if gp else None,
                          "external_fixed_ips": ips.get(r.gw_port_id, [])}
                ifaces = []
                for p in all_ports:
                    if p.device_id == r.id and p.device_owner == "network:router_interface":
                        for ip in ips.get(p.id, []):
                            sub = subs.get(ip["subnet_id"])
                            ifaces.append({"port_id": p.id, "network_id": p.network_id, "subnet_id": ip["subnet_id"],
                                           "ip_address": ip["ip_address"], "cidr": sub.cidr if sub else None,
                                           "mac_address": p.mac_address})
                routers.append({
                    "id": r.id, "name": r.name, "project_id": r.project_id, "admin_state_up": r.admin_state_up,
                    "status": r.status, "external_gateway": gw, "interfaces": ifaces,
                    "routes": list(r.routes or []),
                    "floating_ips": [{k: v for k, v in d.items() if k not in ("router_id", "project_id")}
                                     for d in fip_docs if d["router_id"] == r.id],
                })
            rules: dict[str, list[dict[str, Any]]] = {}
            for rule in s.scalars(select(m.SecurityGroupRule).order_by(m.SecurityGroupRule.created_at)):
                rules.setdefault(rule.security_group_id, []).append({
                    "id": rule.id, "direction": rule.direction, "ethertype": rule.ethertype,
                    "protocol": rule.protocol, "port_range_min": rule.port_range_min,
                    "port_range_max": rule.port_range_max, "remote_ip_prefix": rule.remote_ip_prefix,
                    "remote_group_id": rule.remote_group_id})
            groups = [{"id": g.id, "name": g.name, "project_id": g.project_id, "stateful": g.stateful,
                       "rules": rules.get(g.id, [])} for g in s.scalars(select(m.SecurityGroup))]
            tunnels = sorted({(a.host, (a.configurations or {}).get("tunnel_ip"))
                              for a in self._agents_of_type(s, "Linux bridge agent")
                              if (a.configurations or {}).get("tunnel_ip")})
            return {"revision": revision, "generated_at": iso(now()), "networks": networks, "subnets": subnets,
                    "ports": ports, "routers": routers, "floating_ips": fip_docs, "security_groups": groups,
                    "tunnel_endpoints": [{"host": h, "ip": ip} for h, ip in tunnels]}

        return self.read(run)

    # -- availability ------------------------------------------------------------------------

    def availability_zones(self) -> list[dict[str, Any]]:
        zone = self.settings.default_availability_zone
        return [{"name": zone, "resource": "network", "state": "available"},
                {"name": zone, "resource": "router", "state": "available"}]


__all__ = ["Misc", "ipaddress"]
