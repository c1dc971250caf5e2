"""The only code in kumo that runs root-only operations.

Small typed functions around ``ip``, ``bridge``, ``iptables``/``ip6tables``, ``sysctl``
(inside a namespace only), ``dnsmasq`` and child processes. Every command is an argument
list (never a shell). Every function refuses a host object whose name lacks a kumo prefix,
so nothing here can touch the host's uplink, its default route or anything kumo did not make.
"""

from kumo.privileged.cmd import CommandError, PrivilegedError, check_name

__all__ = ["CommandError", "PrivilegedError", "check_name"]
