"""Upstream Glance for bench/image_throughput.py: a file store, SQLite, no Keystone.

Glance (PyPI, requirements-glance.txt) runs from bench/.venv-glance with its own
``glance-api`` server (one worker), listening on 127.0.0.1 only. Authentication
is left out on purpose (the benchmark measures the data path): a minimal paste
pipeline with Glance's ``context`` middleware, which takes the identity from
``X-Identity-Status: Confirmed`` / ``X-Roles`` / ``X-Project-Id`` headers, as it
would after keystonemiddleware. Image format inspection stays at Glance's
defaults (on), as in kumo.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from upstream.venv import ensure_venv  # type: ignore[import-not-found]

PASTE = """\
[composite:glance-api-bench]
paste.composite_factory = glance.api:root_app_factory
/: api

[pipeline:api]
pipeline = versionnegotiation context rootapp

[composite:rootapp]
paste.composite_factory = glance.api:root_app_factory
/: apiversions
/v2: apiv2app

[app:apiversions]
paste.app_factory = glance.api.versions:create_resource

[app:apiv2app]
paste.app_factory = glance.api.v2.router:API.factory

[filter:versionnegotiation]
paste.filter_factory = glance.api.middleware.version_negotiation:VersionNegotiationFilter.factory

[filter:context]
paste.filter_factory = glance.api.middleware.context:ContextMiddleware.factory
"""

HEADERS = {
    "X-Identity-Status": "Confirmed",
    "X-Roles": "admin,member,reader",
    "X-Project-Id": "bench",
    "X-Tenant-Id": "bench",
    "X-User-Id": "bench",
}


def glance_side(root: Path, port: int) -> tuple[httpx.Client, Path, subprocess.Popen]:
    venv = ensure_venv("glance", "requirements-glance.txt", "constraints-glance.txt")
    home = root / "glance"
    store = home / "store"
    for d in (store, home / "staging", home / "tasks"):
        d.mkdir(parents=True)
    (home / "paste.ini").write_text(PASTE)
    conf = home / "glance-api.conf"
    conf.write_text(f"""\
[DEFAULT]
bind_host = 127.0.0.1
bind_port = {port}
workers = 1
enabled_backends = fs:file
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = {store}
[os_glance_staging_store]
filesystem_store_datadir = {home / "staging"}
[os_glance_tasks_store]
filesystem_store_datadir = {home / "tasks"}
[database]
connection = sqlite:///{home / "glance.sqlite"}
[paste_deploy]
flavor = bench
config_file = {home / "paste.ini"}
""")
    log = home / "glance.log"
    with open(log, "wb") as out:
        subprocess.run([str(venv / "bin" / "glance-manage"), "--config-file", str(conf), "db_sync"],
                       stdout=out, stderr=subprocess.STDOUT, check=True, timeout=300)  # fmt: skip
        proc = subprocess.Popen([str(venv / "bin" / "glance-api"), "--config-file", str(conf)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=HEADERS, timeout=900)
    return client, store, proc
