"""Container sync: where a container may sync to, and how a sync request proves itself.

A container's ``X-Container-Sync-To`` is either a realm form, ``//REALM/CLUSTER/ACCOUNT/CONTAINER``
(the realm names the clusters that trust each other and the key they share), or, old style, a full
``http(s)://host/.../v1/ACCOUNT/CONTAINER`` URL to one of the allowed hosts.  Its
``X-Container-Sync-Key`` is the user's secret: the target container must hold the same key.

Realm-style requests carry ``X-Container-Sync-Auth: REALM NONCE SIG``, SIG being the hex
HMAC-SHA1, keyed with the realm key, of ``METHOD\\nPATH\\nX-TIMESTAMP\\nNONCE\\nUSER-KEY`` (the
same signature Swift clusters use, so kumo and Swift can sync to each other).  Old-style requests
carry the user key itself in ``X-Container-Sync-Key``, from an allowed host only.

Realms come from Swift's ``container-sync-realms.conf`` format and from kumo's own realm/cluster
(settings ``object_store.container_sync_*``), which lets a cloud sync between its own containers.
"""

from __future__ import annotations

import configparser
import hashlib
import hmac
import ipaddress
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kumo.common import shared_secret
from kumo.common.config import Settings

log = logging.getLogger("kumo.object_store.sync")

REALM_KEY_FILE = "container-sync-realm.key"


@dataclass(slots=True)
class Realm:
    name: str  # upper case, as realms are matched
    key: str
    key2: str = ""
    clusters: dict[str, str] = field(default_factory=dict)  # CLUSTER -> endpoint (".../v1/")


@dataclass(slots=True, frozen=True)
class SyncTarget:
    """A validated X-Container-Sync-To: the target container's URL, and its realm if any."""

    url: str
    realm: str | None = None
    realm_key: str | None = None


class InvalidSyncTo(ValueError):
    """An X-Container-Sync-To value this cluster will not sync to (the message is Swift's)."""


@dataclass(slots=True)
class SyncRealms:
    realms: dict[str, Realm] = field(default_factory=dict)
    allowed_hosts: list[str] = field(default_factory=list)
    allow_full_urls: bool = True
    current: tuple[str, str] | None = None  # this cluster's (REALM, CLUSTER)

    def realm(self, name: str) -> Realm | None:
        return self.realms.get(name.upper())

    def keys(self, name: str) -> list[str]:
        realm = self.realm(name)
        return [k for k in (realm.key, realm.key2) if k] if realm else []

    def info(self) -> dict[str, Any]:
        """The ``realms`` of /info's container_sync section (no keys, no endpoints)."""
        out: dict[str, Any] = {}
        for name, realm in self.realms.items():
            if realm.clusters:
                out[name] = {"clusters": {c: {} for c in realm.clusters}}
        if self.current and self.current[0] in out:
            out[self.current[0]]["clusters"][self.current[1]]["current"] = True
        return out

    def host_allowed(self, host: str | None) -> bool:
        """Is ``host`` (a URL's host name or a peer address) one of the allowed sync hosts?"""
        if not host:
            return False
        host = host.strip("[]").lower()
        allowed = {h.strip("[]").lower() for h in self.allowed_hosts}
        if host in allowed:
            return True
        if "localhost" in allowed:
            try:
                return ipaddress.ip_address(host).is_loopback
            except ValueError:
                return False
        return False

    def validate(self, value: str) -> SyncTarget | None:
        """The target of an X-Container-Sync-To value; None when it is empty (sync off)."""
        original = value
        value = value.strip().rstrip("/")
        if not value:
            return None
        if value.startswith("//"):
            parts = value[2:].split("/")
            if len(parts) != 4 or not all(parts):
                raise InvalidSyncTo(f"Invalid X-Container-Sync-To format {original!r}")
            realm_name, cluster, account, container = parts
            realm = self.realm(realm_name)
            if realm is None or not realm.key:
                raise InvalidSyncTo(f"No realm key for {realm_name!r}")
            endpoint = realm.clusters.get(cluster.upper())
            if not endpoint:
                raise InvalidSyncTo(f"No cluster endpoint for {realm_name!r} {cluster!r}")
            return SyncTarget(f"{endpoint.rstrip('/')}/{account}/{container}", realm.name, realm.key)
        if not self.allow_full_urls:
            raise InvalidSyncTo(
                "Full URLs are not allowed for X-Container-Sync-To values. Only realm values of the "
                "format //realm/cluster/account/container are allowed."
            )
        try:
            parts_url = urlsplit(value)
            host = parts_url.hostname
        except ValueError:
            raise InvalidSyncTo(f"Invalid X-Container-Sync-To format {original!r}") from None
        if parts_url.scheme not in ("http", "https"):
            raise InvalidSyncTo(
                f'Invalid scheme {parts_url.scheme!r} in X-Container-Sync-To, must be "//", "http", or "https".'
            )
        if not parts_url.path:
            raise InvalidSyncTo("Path required in X-Container-Sync-To")
        if parts_url.query or parts_url.fragment or ";" in parts_url.path.rsplit("/", 1)[-1]:
            raise InvalidSyncTo("Params, queries, and fragments not allowed in X-Container-Sync-To")
        if not self.host_allowed(host):
            raise InvalidSyncTo(f"Invalid host {host!r} in X-Container-Sync-To")
        return SyncTarget(value)


def signature(method: str, path: str, x_timestamp: str, nonce: str, realm_key: str, user_key: str) -> str:
    """The hex HMAC-SHA1 a realm-style sync request carries (see the module doc)."""
    message = "\n".join((method, path, x_timestamp, nonce, user_key)).encode("utf-8", "surrogateescape")
    return hmac.new(realm_key.encode(), message, hashlib.sha1).hexdigest()


def auth_header(realm: str, realm_key: str, user_key: str, method: str, path: str, x_timestamp: str,
                nonce: str) -> str:  # fmt: skip
    """The value of X-Container-Sync-Auth for one request."""
    return f"{realm} {nonce} {signature(method, path, x_timestamp, nonce, realm_key, user_key)}"


def verify(realms: SyncRealms, value: str, method: str, paths: list[str], x_timestamp: str,
           user_key: str) -> bool:  # fmt: skip
    """Does an X-Container-Sync-Auth value sign this request (any of the path spellings) with the
    realm's key (or its second key, during a key rotation) and the container's user key?"""
    parts = value.split()
    if len(parts) != 3 or not user_key:
        return False
    realm, nonce, sig = parts
    ok = False
    for key in realms.keys(realm):
        for path in paths:
            expected = signature(method, path, x_timestamp, nonce, key, user_key)
            ok = hmac.compare_digest(expected.encode(), sig.encode()) or ok
    return ok


def parse_realms_file(path: Path) -> dict[str, Realm]:
    """Realms from Swift's container-sync-realms.conf: ``[REALM]`` sections with ``key``, ``key2``
    and ``cluster_NAME = URL`` lines (the DEFAULT section's options are ignored)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open() as fh:
            parser.read_file(fh)
    except (OSError, configparser.Error) as exc:
        log.error("container sync: cannot read the realms file %s: %s", path, exc)
        return {}
    out: dict[str, Realm] = {}
    for section in parser.sections():
        opts = {k: v for k, v in parser.items(section) if k not in parser.defaults()}
        realm = Realm(section.upper(), opts.get("key", ""), opts.get("key2", ""))
        for k, v in opts.items():
            if k.startswith("cluster_") and v.strip():
                realm.clusters[k[len("cluster_") :].upper()] = v.strip()
        if not realm.key:
            log.error("container sync: realm %s in %s has no key; ignored", section, path)
            continue
        out[realm.name] = realm
    return out


def load(settings: Settings, cluster_url: str = "") -> SyncRealms:
    """The realms and allowed hosts this process uses, from the settings (and the realms file);
    ``cluster_url`` is this cluster's Swift endpoint when the settings do not name one and this
    process is not where the proxy answers (a storage node of a split deployment)."""
    s = settings.object_store
    realms = parse_realms_file(Path(s.container_sync_realms_file)) if s.container_sync_realms_file else {}
    current = None
    if s.container_sync_realm and s.container_sync_cluster:
        name, cluster = s.container_sync_realm.upper(), s.container_sync_cluster.upper()
        url = s.container_sync_cluster_url or cluster_url or f"{settings.base_url}/object-store/v1/"
        realm = realms.get(name)
        if realm is None:
            key = shared_secret.load(
                settings.data_dir / "object-store" / REALM_KEY_FILE, s.container_sync_realm_key
            )
            realm = realms[name] = Realm(name, key)
        realm.clusters.setdefault(cluster, url)
        current = (name, cluster)
    return SyncRealms(realms, list(s.container_sync_hosts), s.container_sync_allow_full_urls, current)
