"""The network agent: Linux bridges, namespaces, dnsmasq, iptables — driven by the Network API.

Layers: ``specs`` (frozen dataclasses), ``driver`` (the typed Protocol), ``linux`` (the real
driver; all root work goes through kumo.privileged) and ``fake`` (in memory), ``firewall``
and ``dhcp`` (pure functions building rule and config text), ``translate`` (Neutron API
state -> specs), ``agent`` (long-poll + reconcile loops + heartbeats + port status).
"""
