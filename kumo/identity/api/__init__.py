"""Identity's HTTP routers: parse -> call -> render. One module per URL collection."""

from kumo.identity.api import (
    app_creds,
    assignments,
    auth,
    catalog,
    credentials,
    domains,
    grants,
    groups,
    projects,
    roles,
    trusts,
    users,
    versions,
)

ROUTERS = [
    versions.api,
    auth.api,
    domains.api,
    projects.api,
    users.api,
    groups.api,
    roles.api,
    grants.api,
    assignments.api,
    catalog.api,
    app_creds.api,
    credentials.api,
    trusts.api,
]
