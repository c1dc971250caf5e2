"""Domain-specific configuration (``/v3/domains/{id}/config``), after Keystone's DomainConfigManager.

Only the ``identity`` and ``ldap`` groups, with Keystone's whitelisted (returned) and sensitive
(stored, never returned) options, are accepted. The options are stored and served only: kumo
has no LDAP identity driver, so they do not change how a domain's users are looked up.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.common.config import IdentitySettings
from kumo.common.errors import Forbidden, NotFound
from kumo.identity import models as m
from kumo.identity.errors import ValidationError
from kumo.identity.service.core import DEFAULT_DOMAIN_ID, Identity

DC = m.DomainConfig

# Keystone's defaults for each whitelisted option (the values of its [identity] and [ldap] options).
DEFAULTS: dict[str, dict[str, Any]] = {
    "identity": {"driver": "sql", "list_limit": None},
    "ldap": {
        "url": "ldap://localhost",
        "user": None,
        "suffix": "cn=example,cn=com",
        "query_scope": "one",
        "page_size": 0,
        "alias_dereferencing": "default",
        "debug_level": None,
        "chase_referrals": None,
        "user_tree_dn": None,
        "user_filter": None,
        "user_objectclass": "inetOrgPerson",
        "user_id_attribute": "cn",
        "user_name_attribute": "sn",
        "user_mail_attribute": "mail",
        "user_description_attribute": "description",
        "user_pass_attribute": "userPassword",
        "user_enabled_attribute": "enabled",
        "user_enabled_invert": False,
        "user_enabled_mask": 0,
        "user_enabled_default": "True",
        "user_attribute_ignore": ["default_project_id"],
        "user_default_project_id_attribute": None,
        "user_enabled_emulation": False,
        "user_enabled_emulation_dn": None,
        "user_enabled_emulation_use_group_config": False,
        "user_additional_attribute_mapping": [],
        "group_tree_dn": None,
        "group_filter": None,
        "group_objectclass": "groupOfNames",
        "group_id_attribute": "cn",
        "group_name_attribute": "ou",
        "group_members_are_ids": False,
        "group_member_attribute": "member",
        "group_desc_attribute": "description",
        "group_attribute_ignore": [],
        "group_additional_attribute_mapping": [],
        "tls_cacertfile": None,
        "tls_cacertdir": None,
        "use_tls": False,
        "tls_req_cert": "demand",
        "use_pool": True,
        "pool_size": 10,
        "pool_retry_max": 3,
        "pool_retry_delay": 0.1,
        "pool_connection_timeout": -1,
        "pool_connection_lifetime": 600,
        "use_auth_pool": True,
        "auth_pool_size": 100,
        "auth_pool_connection_lifetime": 60,
    },
}
SENSITIVE: dict[str, tuple[str, ...]] = {"identity": (), "ldap": ("password",)}
SECURITY_COMPLIANCE = "security_compliance"
_READABLE_COMPLIANCE = ("password_regex", "password_regex_description")


def _invalid(reason: str) -> Forbidden:
    return Forbidden(f"Invalid domain specific configuration: {reason}.")


def _missing(domain_id: str, what: str) -> NotFound:
    return NotFound(f"Could not find {what} in domain configuration for domain {domain_id}.")


def _what(group: str | None, option: str | None) -> str:
    if option:
        return f"option {option} in group {group}"
    return f"group {group}" if group else "any options"


def check_group_option(group: str | None, option: str | None) -> None:
    if group and group not in DEFAULTS and group not in SENSITIVE:
        raise _invalid(f"Group {group} is not supported for domain specific configurations")
    if (
        option
        and option not in DEFAULTS.get(group or "", {})
        and option not in SENSITIVE.get(group or "", ())
    ):
        raise _invalid(
            f"Option {option} in group {group} is not supported for domain specific configurations"
        )


def _check_config(config: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(config, dict):
        raise ValidationError(f"Invalid input for field 'config': {config!r} is not of type 'object'.")
    if not config:
        raise _invalid("No options specified")
    for group, options in config.items():
        if not options or not isinstance(options, dict):
            raise _invalid(
                f"The value of group {group} specified in the config should be a dictionary of options"
            )
        for option in options:
            check_group_option(group, option)
    return config


def _is_sensitive(group: str, option: str) -> bool:
    return option in SENSITIVE.get(group, ())


def _rows(
    s: Session,
    domain_id: str,
    group: str | None = None,
    option: str | None = None,
    *,
    sensitive: bool | None = False,
) -> list[m.DomainConfig]:
    q = select(DC).where(DC.domain_id == domain_id).order_by(DC.group, DC.option)
    if group:
        q = q.where(DC.group == group)
    if option:
        q = q.where(DC.option == option)
    if sensitive is not None:
        q = q.where(DC.sensitive.is_(sensitive))
    return list(s.scalars(q))


def _to_config(rows: list[m.DomainConfig]) -> dict[str, dict[str, Any]]:
    config: dict[str, dict[str, Any]] = {}
    for row in rows:
        config.setdefault(row.group, {})[row.option] = row.value
    return config


def _domain(s: Session, ident: Identity, domain_id: str) -> None:
    ident.get(s, m.Domain, domain_id, "domain")


def get(
    ident: Identity, domain_id: str, group: str | None = None, option: str | None = None
) -> dict[str, Any]:
    check_group_option(group, option)
    with ident.db.reader() as s:
        _domain(s, ident, domain_id)
        rows = _rows(s, domain_id, group, option)
    if not rows:
        raise _missing(domain_id, _what(group, option))
    if option:
        return {rows[0].option: rows[0].value}
    return _to_config(rows)


def get_security_compliance(
    domain_id: str, option: str | None = None, settings: IdentitySettings | None = None
) -> dict[str, Any]:
    """The readable ``[security_compliance]`` options, from kumo's identity settings."""
    if domain_id != DEFAULT_DOMAIN_ID:
        raise _invalid(
            "Reading security compliance information for any domain other than the default "
            "domain is not allowed or supported"
        )
    if option and option not in _READABLE_COMPLIANCE:
        raise _invalid(
            "Reading security compliance values other than password_regex and "
            "password_regex_description is not allowed"
        )
    values = {name: getattr(settings, name, None) for name in _READABLE_COMPLIANCE}
    if option:
        return {option: values[option]}
    return {SECURITY_COMPLIANCE: values}


def _store(s: Session, domain_id: str, config: dict[str, dict[str, Any]]) -> None:
    for group, options in config.items():
        for option, value in options.items():
            row = s.get(DC, (domain_id, group, option))
            if row is None:
                s.add(
                    DC(
                        domain_id=domain_id,
                        group=group,
                        option=option,
                        value=value,
                        sensitive=_is_sensitive(group, option),
                    )
                )
            else:
                row.value = value


def create(ident: Identity, domain_id: str, config: Any) -> tuple[dict[str, Any], bool]:
    """Replace the domain's whole config; returns (config, created) where created means none existed."""
    with ident.db.session() as s:
        _domain(s, ident, domain_id)
        config = _check_config(config)
        existed = bool(_rows(s, domain_id, sensitive=None))
        s.execute(delete(DC).where(DC.domain_id == domain_id))
        s.flush()
        _store(s, domain_id, config)
        s.flush()
        return _to_config(_rows(s, domain_id)), not existed


def update(
    ident: Identity, domain_id: str, config: Any, group: str | None = None, option: str | None = None
) -> dict[str, Any]:
    with ident.db.session() as s:
        _domain(s, ident, domain_id)
        if group and option:
            config = {group: config}
        config = _check_config(config)
        check_group_option(group, option)
        if group:
            if len(config) != 1 or (option and len(config.get(group) or {}) != 1):
                if option:
                    raise _invalid(
                        f"Trying to update option {option} in group {group}, so that, and only that, "
                        "option must be specified  in the config"
                    )
                raise _invalid(
                    f"Trying to update group {group}, so that, and only that, group must be specified in the config"
                )
            if group not in config:
                raise _invalid(
                    f"request to update group {group}, but config provided contains group "
                    f"{next(iter(config))} instead"
                )
            if option and option not in config[group]:
                raise _invalid(
                    f"Trying to update option {option} in group {group}, but config provided contains "
                    f"option {next(iter(config[group]))} instead"
                )
            if not _rows(s, domain_id, group, option, sensitive=None):
                raise _missing(domain_id, _what(group, option))
        _store(s, domain_id, config)
        s.flush()
        rows = _rows(s, domain_id)
    if not rows:
        raise _missing(domain_id, _what(None, None))
    return _to_config(rows)


def delete_config(
    ident: Identity, domain_id: str, group: str | None = None, option: str | None = None
) -> None:
    check_group_option(group, option)
    with ident.db.session() as s:
        _domain(s, ident, domain_id)
        if group:
            current = _to_config(_rows(s, domain_id, group, sensitive=None)).get(group)
            if not current:
                raise _missing(domain_id, _what(group, None))
            if option and option not in current:
                raise _missing(domain_id, _what(group, option))
        q = delete(DC).where(DC.domain_id == domain_id)
        if group:
            q = q.where(DC.group == group)
        if option:
            q = q.where(DC.option == option)
        s.execute(q)
        s.info["bump"] = True


def get_default(group: str | None = None, option: str | None = None) -> dict[str, Any]:
    check_group_option(group, option)
    if group and option:
        if option not in DEFAULTS[group]:
            raise _invalid(f"Reading the default for option {option} in group {group} is not supported")
        return {option: DEFAULTS[group][option]}
    if group:
        return {group: dict(DEFAULTS[group])}
    return {g: dict(opts) for g, opts in DEFAULTS.items()}
