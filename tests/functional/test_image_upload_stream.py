"""Streamed uploads through the pipelined data path: a refusal midway leaves no data behind."""

from __future__ import annotations

import hashlib
import os

import httpx

MiB = 1024 * 1024


def _image_client(cloud) -> httpx.Client:  # type: ignore[no-untyped-def]
    return httpx.Client(base_url=f"{cloud.url}/image/v2", headers={"X-Auth-Token": cloud.admin_token}, timeout=120)


def test_quota_exceeded_midway_and_then_a_fitting_upload(kumo_cloud) -> None:  # type: ignore[no-untyped-def]
    cloud = kumo_cloud(env={"KUMO_IMAGE__IMAGE_SIZE_TOTAL": str(3 * MiB)})
    store = cloud.data_dir / "images"
    with _image_client(cloud) as c:
        image = c.post("/images", json={"name": "big", "disk_format": "raw", "container_format": "bare"}).json()

        def eight_mib():  # chunked: no Content-Length, so the quota bites midway
            for _ in range(8):
                yield os.urandom(MiB)

        r = c.put(f"/images/{image['id']}/file", content=eight_mib(),
                  headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert r.status_code == 413, r.text
        assert "image_size_total" in r.text
        shown = c.get(f"/images/{image['id']}").json()
        assert shown["status"] == "queued" and shown["size"] is None
        left = sorted(p.name for p in store.iterdir() if p.is_file()) if store.exists() else []
        assert left == [], left

        payload = os.urandom(2 * MiB + 12345)
        blocks = [payload[i : i + 70000] for i in range(0, len(payload), 70000)]
        r = c.put(f"/images/{image['id']}/file", content=iter(blocks),
                  headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert r.status_code == 204, r.text
        shown = c.get(f"/images/{image['id']}").json()
        assert shown["status"] == "active" and shown["size"] == len(payload)
        assert shown["checksum"] == hashlib.md5(payload).hexdigest()
        assert shown["os_hash_value"] == hashlib.sha512(payload).hexdigest()
        assert c.get(f"/images/{image['id']}/file").content == payload
        part = c.get(f"/images/{image['id']}/file", headers={"Range": f"bytes={MiB - 5}-{MiB + 4}"})
        assert part.status_code == 206 and part.content == payload[MiB - 5 : MiB + 5]
