"""Security groups and rules, with one ``default`` group per project."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.common.context import RequestContext
from kumo.network import ipam
from kumo.network import models as m
from kumo.network.errors import bad, conflict, not_found
from kumo.network.policies import can_read, enforce_member, enforce_write, is_admin
from kumo.network.schemas import invalid, to_bool, to_int, to_str, to_uuid
from kumo.network.service.core import new_id, now
from kumo.network.service.subnets import Subnets

PROTOCOLS = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2, "ipip": 4,
    "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
    "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136,
    "vrrp": 112,
}
PORT_PROTOCOLS = {"tcp", "udp", "sctp", "dccp", "udplite", "6", "17", "132", "33", "136"}
ICMP_PROTOCOLS = {"icmp", "ipv6-icmp", "icmpv6", "1", "58"}
IPV6_ONLY = {"ipv6-encap", "ipv6-frag", "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route",
             "41", "43", "44", "58", "59", "60"}
RULE_KEYS = ("security_group_id", "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
             "remote_ip_prefix", "remote_group_id", "remote_address_group_id", "description", "project_id",
             "tenant_id", "normalized_cidr")


class SecurityGroups(Subnets):
    # -- default group -----------------------------------------------------------------------

    def ensure_default_sg(self, s: Session, project_id: str) -> str | None:
        """The project's ``default`` group, created with upstream's rules on first use."""
        if not project_id:
            return None
        row = s.get(m.DefaultSecurityGroup, project_id)
        if row is not None:
            return row.security_group_id
        ts = now()
        sg = m.SecurityGroup(id=new_id(), project_id=project_id, name="default",
                             description="Default security group", tags=[], revision_number=0,
                             created_at=ts, updated_at=ts, stateful=True)
        s.add(sg)
        s.flush()
        s.add(m.DefaultSecurityGroup(project_id=project_id, security_group_id=sg.id))
        for ethertype in ("IPv4", "IPv6"):
            s.add(self._rule_row(sg, "egress", ethertype))
            s.add(self._rule_row(sg, "ingress", ethertype, remote_group_id=sg.id))
        s.flush()
        self.bump(s)
        return sg.id

    def ensure_default_sg_tx(self, project_id: str | None) -> None:
        if not project_id:
            return
        exists = self.read(lambda s: s.get(m.DefaultSecurityGroup, project_id) is not None)
        if not exists:
            self.tx(lambda s: self.ensure_default_sg(s, project_id))

    @staticmethod
    def _rule_row(sg: m.SecurityGroup, direction: str, ethertype: str, **kw: Any) -> m.SecurityGroupRule:
        ts = now()
        return m.SecurityGroupRule(
            id=new_id(), security_group_id=sg.id, project_id=sg.project_id, direction=direction,
            ethertype=ethertype, protocol=kw.get("protocol"), port_range_min=kw.get("port_range_min"),
            port_range_max=kw.get("port_range_max"), remote_ip_prefix=kw.get("remote_ip_prefix"),
            remote_group_id=kw.get("remote_group_id"), remote_address_group_id=None,
            description=kw.get("description", ""), revision_number=0, created_at=ts, updated_at=ts,
        )

    # -- rendering ---------------------------------------------------------------------------

    def render_rule(self, r: m.SecurityGroupRule, default_ids: set[str] | None = None) -> dict[str, Any]:
        return {
            "id": r.id, "tenant_id": r.project_id, "project_id": r.project_id,
            "security_group_id": r.security_group_id, "direction": r.direction, "ethertype": r.ethertype,
            "protocol": r.protocol, "port_range_min": r.port_range_min, "port_range_max": r.port_range_max,
            "remote_ip_prefix": r.remote_ip_prefix, "normalized_cidr": r.remote_ip_prefix,
            "remote_group_id": r.remote_group_id, "remote_address_group_id": r.remote_address_group_id,
            "description": r.description, "belongs_to_default_sg": r.security_group_id in (default_ids or set()),
            "created_at": self._iso(r.created_at), "updated_at": self._iso(r.updated_at),
            "revision_number": r.revision_number,
        }

    @staticmethod
    def _iso(dt: Any) -> Any:
        from kumo.network.service.core import iso

        return iso(dt)

    def render_sg(self, sg: m.SecurityGroup, rules: list[m.SecurityGroupRule], default_ids: set[str]) -> dict:
        out = self.std(sg)
        out.update({
            "stateful": sg.stateful,
            "shared": False,
            "is_default": sg.id in default_ids,
            "security_group_rules": [self.render_rule(r, default_ids) for r in rules],
        })
        return out

    def _default_ids(self, s: Session) -> set[str]:
        return set(s.scalars(select(m.DefaultSecurityGroup.security_group_id)))

    def get_sg_row(self, s: Session, ctx: RequestContext, sg_id: Any) -> m.SecurityGroup:
        sg = s.get(m.SecurityGroup, sg_id) if isinstance(sg_id, str) else None
        if sg is None or not can_read(ctx, sg.project_id):
            raise not_found("security_group", sg_id)
        return sg

    def list_security_groups(self, ctx: RequestContext, project_hint: str | None = None) -> list[dict]:
        self.ensure_default_sg_tx(ctx.project_id if ctx.scope == "project" else None)
        if project_hint and is_admin(ctx):
            self.ensure_default_sg_tx(project_hint)

        def run(s: Session) -> list[dict[str, Any]]:
            groups = [g for g in s.scalars(select(m.SecurityGroup)) if can_read(ctx, g.project_id)]
            rules: dict[str, list[m.SecurityGroupRule]] = {}
            for r in s.scalars(select(m.SecurityGroupRule).order_by(m.SecurityGroupRule.created_at)):
                rules.setdefault(r.security_group_id, []).append(r)
            dids = self._default_ids(s)
            return [self.render_sg(g, rules.get(g.id, []), dids) for g in groups]

        return self.read(run)

    def show_security_group(self, ctx: RequestContext, sg_id: str) -> dict[str, Any]:
        def run(s: Session) -> dict[str, Any]:
            sg = self.get_sg_row(s, ctx, sg_id)
            rules = list(s.scalars(select(m.SecurityGroupRule).where(
                m.SecurityGroupRule.security_group_id == sg.id).order_by(m.SecurityGroupRule.created_at)))
            return self.render_sg(sg, rules, self._default_ids(s))

        return self.read(run)

    # -- groups ------------------------------------------------------------------------------

    def create_security_group(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        self.allowed(data, "stateful", "tags", "shared")
        enforce_member(ctx, "create_security_group")
        if data.get("name") == "default":
            raise conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists.")

        def run(s: Session) -> dict[str, Any]:
            sg = self.new_row(m.SecurityGroup, ctx, data,
                              stateful=to_bool(data.get("stateful", True), "stateful"))
            if "tags" in data:
                sg.tags = self.validate_tags(data["tags"])
            enforce_write(ctx, sg.project_id, "create_security_group")
            self.ensure_default_sg(s, sg.project_id)
            self.check_quota(s, ctx, sg.project_id, "security_group", m.SecurityGroup)
            s.add(sg)
            s.flush()
            rules = [self._rule_row(sg, "egress", "IPv4"), self._rule_row(sg, "egress", "IPv6")]
            for r in rules:
                s.add(r)
            s.flush()
            self.bump(s)
            return self.render_sg(sg, rules, self._default_ids(s))

        return self.tx(run)

    def update_security_group(self, ctx: RequestContext, sg_id: str, data: dict[str, Any],
                              if_match: str | None = None) -> dict[str, Any]:
        self.allowed(data, "stateful", "tags", "shared")

        def run(s: Session) -> dict[str, Any]:
            sg = self.get_sg_row(s, ctx, sg_id)
            enforce_write(ctx, sg.project_id, "update_security_group")
            self.check_if_match(sg, if_match)
            self.check_project_change(ctx, sg, data)
            dids = self._default_ids(s)
            if "name" in data:
                if sg.id in dids and data["name"] != "default":
                    raise conflict("SecurityGroupCannotUpdateDefault", "Updating default security group not "
                                                                       "allowed.")
                if data["name"] == "default" and sg.id not in dids:
                    raise conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
            self.set_std(sg, data)
            if "stateful" in data:
                stateful = to_bool(data["stateful"], "stateful")
                if stateful != sg.stateful and self._sg_ports(s, sg.id):
                    raise conflict("SecurityGroupInUse", f"Security Group {sg.id} in use.")
                sg.stateful = stateful
            if "tags" in data:
                sg.tags = self.validate_tags(data["tags"])
            self.touch(sg)
            s.flush()
            self.bump(s)
            rules = list(s.scalars(select(m.SecurityGroupRule).where(
                m.SecurityGroupRule.security_group_id == sg.id).order_by(m.SecurityGroupRule.created_at)))
            return self.render_sg(sg, rules, dids)

        return self.tx(run)

    @staticmethod
    def _sg_ports(s: Session, sg_id: str) -> list[str]:
        return [p.id for p in s.scalars(select(m.Port)) if sg_id in (p.security_groups or [])]

    def delete_security_group(self, ctx: RequestContext, sg_id: str, if_match: str | None = None) -> None:
        def run(s: Session) -> None:
            sg = self.get_sg_row(s, ctx, sg_id)
            enforce_write(ctx, sg.project_id, "delete_security_group")
            self.check_if_match(sg, if_match)
            if sg.id in self._default_ids(s) and not is_admin(ctx):
                raise conflict("SecurityGroupCannotRemoveDefault",
                               "Insufficient rights for removing default security group.")
            if self._sg_ports(s, sg.id):
                raise conflict("SecurityGroupInUse", f"Security Group {sg.id} in use.")
            s.execute(delete(m.SecurityGroupRule).where(m.SecurityGroupRule.remote_group_id == sg.id))
            s.execute(delete(m.SecurityGroupRule).where(m.SecurityGroupRule.security_group_id == sg.id))
            s.execute(delete(m.DefaultSecurityGroup).where(m.DefaultSecurityGroup.security_group_id == sg.id))
            s.delete(sg)
            self.bump(s)

        self.tx(run)

    # -- rules -------------------------------------------------------------------------------

    def list_security_group_rules(self, ctx: RequestContext) -> list[dict[str, Any]]:
        self.ensure_default_sg_tx(ctx.project_id if ctx.scope == "project" else None)

        def run(s: Session) -> list[dict[str, Any]]:
            groups = {g.id: g for g in s.scalars(select(m.SecurityGroup))}
            dids = self._default_ids(s)
            out = []
            for r in s.scalars(select(m.SecurityGroupRule).order_by(m.SecurityGroupRule.created_at)):
                g = groups.get(r.security_group_id)
                if can_read(ctx, r.project_id) or (g is not None and can_read(ctx, g.project_id)):
                    out.append(self.render_rule(r, dids))
            return out

        return self.read(run)

    def _get_rule_row(self, s: Session, ctx: RequestContext, rule_id: Any) -> m.SecurityGroupRule:
        r = s.get(m.SecurityGroupRule, rule_id) if isinstance(rule_id, str) else None
        if r is None:
            raise not_found("security_group_rule", rule_id)
        g = s.get(m.SecurityGroup, r.security_group_id)
        if not (can_read(ctx, r.project_id) or (g is not None and can_read(ctx, g.project_id))):
            raise not_found("security_group_rule", rule_id)
        return r

    def show_security_group_rule(self, ctx: RequestContext, rule_id: str) -> dict[str, Any]:
        return self.read(lambda s: self.render_rule(self._get_rule_row(s, ctx, rule_id), self._default_ids(s)))

    def delete_security_group_rule(self, ctx: RequestContext, rule_id: str) -> None:
        def run(s: Session) -> None:
            r = self._get_rule_row(s, ctx, rule_id)
            g = s.get(m.SecurityGroup, r.security_group_id)
            enforce_write(ctx, g.project_id if g else r.project_id, "delete_security_group_rule")
            s.delete(r)
            if g is not None:
                self.touch(g)
            self.bump(s)

        self.tx(run)

    @staticmethod
    def validate_rule(data: dict[str, Any]) -> dict[str, Any]:
        direction = data.get("direction")
        if direction not in ("ingress", "egress"):
            raise invalid("direction", f"'{direction}' is not in ['ingress', 'egress']")
        ethertype = data.get("ethertype", "IPv4")
        if isinstance(ethertype, str) and ethertype.lower() in ("ipv4", "ipv6"):
            ethertype = "IPv4" if ethertype.lower() == "ipv4" else "IPv6"
        else:
            raise bad(f"Security group rule for ethertype '{ethertype}' not supported. Allowed values are "
                      "['IPv4', 'IPv6'].", "SecurityGroupRuleInvalidEtherType")
        protocol = data.get("protocol")
        if protocol in ("", "any"):
            protocol = None
        if protocol is not None:
            if isinstance(protocol, int) and not isinstance(protocol, bool):
                protocol = str(protocol)
            if not isinstance(protocol, str):
                raise bad(f"Security group rule protocol {protocol} not supported.",
                          "SecurityGroupRuleInvalidProtocol")
            protocol = protocol.lower()
            if protocol not in PROTOCOLS and (not protocol.isdigit() or not 0 <= int(protocol) <= 255):
                raise bad(f"Security group rule protocol {protocol} not supported. Only protocol values "
                          f"{sorted(PROTOCOLS)} and integer representations [0 to 255] are supported.",
                          "SecurityGroupRuleInvalidProtocol")
            if ethertype == "IPv4" and protocol in IPV6_ONLY:
                raise bad(f"Protocol {protocol} is not supported for ethertype IPv4.",
                          "SecurityGroupEthertypeConflictWithProtocol")
        pmin = to_int(data.get("port_range_min"), "port_range_min", allow_none=True)
        pmax = to_int(data.get("port_range_max"), "port_range_max", allow_none=True)
        if (pmin is not None or pmax is not None) and protocol is None:
            raise bad("Must also specify protocol if port range is given.", "SecurityGroupProtocolRequiredWithPorts")
        if protocol in PORT_PROTOCOLS and (pmin is not None or pmax is not None):
            if pmin is None:
                raise bad("For TCP/UDP protocols, port_range_min must be <= port_range_max",
                          "SecurityGroupInvalidPortRange")
            if pmax is None:
                pmax = pmin
            if not (1 <= pmin <= 65535 and 1 <= pmax <= 65535):  # type: ignore[operator]
                raise bad(f"Invalid value for port {pmin if not 1 <= pmin <= 65535 else pmax}",  # type: ignore
                          "SecurityGroupInvalidPortValue")
            if pmin > pmax:  # type: ignore[operator]
                raise bad("For TCP/UDP protocols, port_range_min must be <= port_range_max",
                          "SecurityGroupInvalidPortRange")
        elif protocol in ICMP_PROTOCOLS:
            for attr, v in (("type", pmin), ("code", pmax)):
                if v is not None and not 0 <= v <= 255:
                    raise bad(f"Invalid value for ICMP {attr} (port_range_{'min' if attr == 'type' else 'max'})"
                              f" {v}. It must be 0 to 255.", "SecurityGroupInvalidIcmpValue")
            if pmin is None and pmax is not None:
                raise bad(f"ICMP code (port-range-max) {pmax} is provided but ICMP type (port-range-min) is "
                          "missing.", "SecurityGroupMissingIcmpType")
        elif (pmin is not None or pmax is not None) and protocol not in PORT_PROTOCOLS:
            raise bad(f"Invalid protocol {protocol} for port range, only supported for TCP, UDP, UDPLITE, "
                      "SCTP and DCCP.", "SecurityGroupInvalidProtocolForPortRange")
        prefix = data.get("remote_ip_prefix")
        if prefix is not None:
            net = ipam.parse_cidr(prefix if "/" in str(prefix) else f"{prefix}/{32 if ':' not in str(prefix) else 128}",
                                  "remote_ip_prefix", strict=False)
            if (net.version == 4) != (ethertype == "IPv4"):
                raise bad(f"Conflicting value ethertype {ethertype} for CIDR {prefix}",
                          "SecurityGroupRuleParameterConflict")
            prefix = str(net)
        remote_group = data.get("remote_group_id")
        if remote_group is not None and not isinstance(remote_group, str):
            raise invalid("remote_group_id", f"'{remote_group}' is not a valid UUID")
        if prefix is not None and remote_group is not None:
            raise bad("Only remote_ip_prefix or remote_group_id may be provided.", "SecurityGroupRemoteGroupAndRemoteIpPrefix")
        return {"direction": direction, "ethertype": ethertype, "protocol": protocol, "port_range_min": pmin,
                "port_range_max": pmax, "remote_ip_prefix": prefix, "remote_group_id": remote_group}

    def create_security_group_rule(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        from kumo.network.schemas import check_keys

        check_keys(data, RULE_KEYS)
        enforce_member(ctx, "create_security_group_rule")
        if "security_group_id" not in data:
            raise bad("Failed to parse request. Required attribute 'security_group_id' not specified")
        to_uuid(data["security_group_id"], "security_group_id")
        values = self.validate_rule(data)
        desc = to_str(data.get("description", ""), "description") or ""

        def run(s: Session) -> dict[str, Any]:
            sg = self.get_sg_row(s, ctx, data["security_group_id"])
            enforce_write(ctx, sg.project_id, "create_security_group_rule")
            if values["remote_group_id"] is not None and s.get(m.SecurityGroup, values["remote_group_id"]) is None:
                raise not_found("security_group", values["remote_group_id"])
            for r in s.scalars(select(m.SecurityGroupRule).where(m.SecurityGroupRule.security_group_id == sg.id)):
                same = all(getattr(r, k) == v for k, v in values.items())
                if same:
                    raise conflict("SecurityGroupRuleExists",
                                   f"Security group rule already exists. Rule id is {r.id}.")
            self.check_quota(s, ctx, sg.project_id, "security_group_rule", m.SecurityGroupRule)
            rule = self._rule_row(sg, values["direction"], values["ethertype"], description=desc,
                                  **{k: v for k, v in values.items() if k not in ("direction", "ethertype")})
            s.add(rule)
            self.touch(sg)
            s.flush()
            self.bump(s)
            return self.render_rule(rule, self._default_ids(s))

        return self.tx(run)
