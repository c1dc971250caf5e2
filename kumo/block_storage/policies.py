"""Who may do what in block storage (Cinder's default policies, simplified to the default roles)."""

from __future__ import annotations

from kumo.common.policy import ADMIN, ADMIN_OR_PROJECT_MEMBER, ADMIN_OR_PROJECT_READER, Policy, always

RULES = {
    "volume:read": ADMIN_OR_PROJECT_READER,
    "volume:write": ADMIN_OR_PROJECT_MEMBER,
    "type:read": always,
    "admin": ADMIN,
}

POLICY = Policy(RULES)
