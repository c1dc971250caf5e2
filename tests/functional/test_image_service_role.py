"""Compute hosts act on images with their node's ``service`` role (kumo/image/service/core.py
``is_service``): they read and download any project's private image, and fill in or drop a
snapshot image that has no data yet — but cannot touch an active image of another project."""

from __future__ import annotations

import os

import httpx

from tests.support import KumoCloud, unique


def _token(cloud: KumoCloud, user: dict, project_id: str) -> str:
    token, _ = cloud.issue(user["name"], user["password"], project_id=project_id)
    return token


def test_service_role_reads_private_images_and_fills_snapshots(cloud: KumoCloud) -> None:
    owner_project, other_project = cloud.new_project(), cloud.new_project()
    owner, node, stranger = cloud.new_user(), cloud.new_user(), cloud.new_user()
    cloud.grant("member", owner["id"], project_id=owner_project["id"])
    cloud.grant("service", node["id"], project_id=other_project["id"])
    cloud.grant("member", stranger["id"], project_id=other_project["id"])
    base = cloud.url + "/image/v2"
    data = os.urandom(4096)

    def client(user: dict, project: dict) -> httpx.Client:
        return httpx.Client(base_url=base, timeout=30, headers={"X-Auth-Token": _token(cloud, user, project["id"])})

    with client(owner, owner_project) as o, client(node, other_project) as n, client(stranger, other_project) as s:
        r = o.post("/images", json={"name": unique("priv"), "disk_format": "raw", "container_format": "bare"})
        assert r.status_code == 201, r.text
        active = r.json()["id"]
        r = o.put(f"/images/{active}/file", content=data, headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 204, r.text

        # the stranger (an ordinary member elsewhere) sees nothing
        assert s.get(f"/images/{active}").status_code == 404
        assert s.get(f"/images/{active}/file").status_code == 404
        # the node's service user reads and downloads it, but cannot delete or change it
        assert n.get(f"/images/{active}").status_code == 200
        r = n.get(f"/images/{active}/file")
        assert r.status_code == 200 and r.content == data
        assert n.delete(f"/images/{active}").status_code == 403
        assert o.get(f"/images/{active}").json()["status"] == "active"

        # a snapshot image the compute API created for the owner: the node uploads its data
        r = o.post("/images", json={"name": unique("snap"), "disk_format": "raw", "container_format": "bare"})
        snap = r.json()["id"]
        assert s.put(f"/images/{snap}/file", content=data,
                     headers={"Content-Type": "application/octet-stream"}).status_code == 404
        r = n.put(f"/images/{snap}/file", content=data, headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 204, r.text
        shown = o.get(f"/images/{snap}").json()
        assert shown["status"] == "active" and shown["owner"] == owner_project["id"]
        # a failed snapshot is dropped by the node while it has no data
        r = o.post("/images", json={"name": unique("snap"), "disk_format": "raw", "container_format": "bare"})
        failed = r.json()["id"]
        assert n.delete(f"/images/{failed}").status_code == 204
        assert o.get(f"/images/{failed}").status_code == 404
        for image_id in (active, snap):
            assert o.delete(f"/images/{image_id}").status_code == 204
