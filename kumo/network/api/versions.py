"""Version discovery and the extension list."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import API, Call
from kumo.network.errors import not_found

router = API()

RESOURCES = [
    ("network", "networks"), ("subnet", "subnets"), ("port", "ports"), ("subnetpool", "subnetpools"),
    ("router", "routers"), ("floatingip", "floatingips"), ("security_group", "security-groups"),
    ("security_group_rule", "security-group-rules"), ("quota", "quotas"), ("agent", "agents"),
    ("network_ip_availability", "network-ip-availabilities"), ("availability_zone", "availability_zones"),
]

UPDATED = "2024-01-01T00:00:00-00:00"
EXTENSIONS: list[tuple[str, str, str]] = [
    ("agent", "agent", "The agent management extension."),
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
    ("availability_zone", "Availability Zone", "The availability zone extension."),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    ("dhcp_agent_scheduler", "DHCP Agent Scheduler", "Schedule networks among dhcp agents"),
    ("dvr", "Distributed Virtual Router", "Enables configuration of Distributed Virtual Routers."),
    ("external-net", "Neutron external network", "Adds external network attribute to network resource."),
    ("ext-gw-mode", "Neutron L3 Configurable external gateway mode",
     "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway"),
    ("extra_dhcp_opt", "Neutron Extra DHCP options",
     "Extra options configuration for DHCP. For example PXE boot options to DHCP clients can be specified"),
    ("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router"),
    ("extraroute-atomic", "Atomically add/remove extra routes",
     "Edit extra routes of a router on server side by atomically adding/removing extra routes"),
    ("ip-substring-filtering", "IP address substring filtering", "Provides IP address substring filtering when "
                                                                 "listing ports"),
    ("l3_agent_scheduler", "L3 Agent Scheduler", "Schedule routers among l3 agents"),
    ("metering", "Neutron Metering", "Neutron Metering extension."),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("net-mtu-writable", "Network MTU (writable)", "Provides a writable MTU attribute for a network resource."),
    ("network-ip-availability", "Network IP Availability", "Provides IP availability data for each network and "
                                                           "subnet."),
    ("network_availability_zone", "Network Availability Zone", "Availability zone support for network."),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    ("port-security", "Port Security", "Provides port security"),
    ("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled."),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    ("quotas", "Quota management support", "Expose functions for quotas management per project"),
    ("quota_details", "Quota details management support", "Expose functions for quotas usage statistics per "
                                                           "project"),
    ("revision-if-match", "If-Match constraints based on revision_number",
     "Extension indicating that If-Match based on revision_number is supported."),
    ("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and "
                                   "access to external networks via a NAT gateway."),
    ("router_availability_zone", "Router Availability Zone", "Availability zone support for router."),
    ("security-group", "security-group", "The security groups extension."),
    ("service-type", "Neutron Service Type Management", "API for retrieving service providers for Neutron "
                                                        "advanced services"),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    ("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard "
                                                               "attributes"),
    ("standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number "
                                                             "of neutron resources."),
    ("standard-attr-tag", "Tag support for resources with standard attribute: subnet, trunk, network_segment_range, "
                          "router, network, policy, subnetpool, port, security_group, floatingip",
     "Enables to set tag on resources with standard attribute."),
    ("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron "
                                                       "resources that have Neutron standard attributes."),
    ("stateful-security-group", "Stateful security group", "Indicates if the security group is stateful or not"),
    ("subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a subnet pool"),
    ("subnet-external-network", "Subnet External Network", "Informs if the subnet is associated with an external "
                                                           "network."),
    ("tag", "Tag support", "Enables to set tag on resources."),
    ("tag-ext", "Tag support for resources: subnet, subnetpool, port, router",
     "Extends tag support to more L2 and L3 resources."),
]


def describe(alias: str, name: str, desc: str) -> dict[str, Any]:
    return {"alias": alias, "name": name, "description": desc, "updated": UPDATED, "links": []}


@router.route("/", "GET", public=True)
def versions(call: Call) -> dict[str, Any]:
    return {"versions": [{"id": "v2.0", "status": "CURRENT",
                          "links": [{"rel": "self", "href": call.url("/v2.0/")}]}]}


@router.route("/v2.0", "GET")
@router.route("/v2.0/", "GET")
def resources(call: Call) -> dict[str, Any]:
    return {"resources": [{"name": name, "collection": coll,
                           "links": [{"rel": "self", "href": call.url(f"/v2.0/{coll}")}]}
                          for name, coll in RESOURCES]}


@router.route("/v2.0/extensions", "GET")
def list_extensions(call: Call) -> dict[str, Any]:
    return {"extensions": [describe(*e) for e in EXTENSIONS]}


@router.route("/v2.0/extensions/{alias}", "GET")
def show_extension(call: Call) -> dict[str, Any]:
    for e in EXTENSIONS:
        if e[0] == call.params["alias"]:
            return {"extension": describe(*e)}
    raise not_found("extension", call.params["alias"])
