"""Who may do what in compute (Nova's default policies, simplified to the default roles)."""

from __future__ import annotations

from kumo.common.policy import ADMIN, ADMIN_OR_PROJECT_MEMBER, ADMIN_OR_PROJECT_READER, Policy, always

RULES = {
    "server:read": ADMIN_OR_PROJECT_READER,
    "server:write": ADMIN_OR_PROJECT_MEMBER,
    "server:admin": ADMIN,
    "flavor:read": always,
    "flavor:manage": ADMIN,
    "keypair:any_user": ADMIN,
    "admin": ADMIN,
    "quota:read": ADMIN_OR_PROJECT_READER,
}

POLICY = Policy(RULES)
