"""Glance metadata definitions (``/v2/metadefs``) over raw HTTP against a real kumo."""

from __future__ import annotations

import httpx
import pytest

from tests.support import KumoCloud, unique


def _client(cloud: KumoCloud, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=cloud.url + "/image/v2/metadefs", headers={"X-Auth-Token": token}, timeout=30
    )


@pytest.fixture(scope="module")
def admin(cloud: KumoCloud):
    with _client(cloud, cloud.admin_token) as client:
        yield client


@pytest.fixture(scope="module")
def demo(cloud: KumoCloud):
    token, _ = cloud.issue("demo")
    with _client(cloud, token) as client:
        yield client


def test_namespace_lifecycle_and_contents(admin: httpx.Client, demo: httpx.Client):
    types = [t["name"] for t in admin.get("/resource_types").json()["resource_types"]]
    assert "OS::Glance::Image" in types
    name = unique("ns")
    body = {
        "namespace": name,
        "display_name": "Test NS",
        "visibility": "public",
        "protected": True,
        "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "hw_"}],
        "properties": {"cpu": {"title": "CPU", "type": "integer", "minimum": 1}},
        "objects": [{"name": "obj1", "properties": {"p": {"title": "P", "type": "string"}}}],
        "tags": [{"name": "t1"}],
    }
    r = admin.post("/namespaces", json=body)
    assert r.status_code == 201, r.text
    ns = r.json()
    assert ns["protected"] is True and ns["visibility"] == "public" and ns["self"].endswith(name)
    assert admin.post("/namespaces", json={"namespace": name}).status_code == 409

    shown = demo.get(f"/namespaces/{name}").json()  # public: everyone reads it
    assert shown["properties"]["cpu"]["type"] == "integer"
    assert [o["name"] for o in shown["objects"]] == ["obj1"] and shown["tags"] == [{"name": "t1"}]
    assert shown["resource_type_associations"][0]["prefix"] == "hw_"
    assert demo.delete(f"/namespaces/{name}").status_code == 403  # writes are for admins
    assert admin.delete(f"/namespaces/{name}").status_code == 403  # protected

    # properties
    prop = {"name": "ram", "title": "RAM", "type": "integer"}
    assert admin.post(f"/namespaces/{name}/properties", json=prop).status_code == 201
    assert (
        admin.post(f"/namespaces/{name}/properties", json={"name": "x", "type": "string"}).status_code == 400
    )
    r = admin.put(f"/namespaces/{name}/properties/ram", json={**prop, "title": "Memory"})
    assert r.status_code == 200 and r.json()["title"] == "Memory"
    assert set(admin.get(f"/namespaces/{name}/properties").json()["properties"]) == {"cpu", "ram"}

    # objects
    r = admin.put(f"/namespaces/{name}/objects/obj1", json={"name": "obj2", "required": ["p"]})
    assert r.status_code == 200 and r.json()["name"] == "obj2"
    assert admin.get(f"/namespaces/{name}/objects/obj1").status_code == 404
    assert [o["name"] for o in admin.get(f"/namespaces/{name}/objects").json()["objects"]] == ["obj2"]

    # tags: replace, append, single, rename
    r = admin.post(f"/namespaces/{name}/tags", json={"tags": [{"name": "a"}, {"name": "b"}]})
    assert r.status_code == 201
    r = admin.post(
        f"/namespaces/{name}/tags", json={"tags": [{"name": "c"}]}, headers={"X-Openstack-Append": "True"}
    )
    assert r.status_code == 201
    assert admin.post(f"/namespaces/{name}/tags/d").status_code == 201
    assert admin.put(f"/namespaces/{name}/tags/d", json={"name": "e"}).json()["name"] == "e"
    tags = sorted(t["name"] for t in admin.get(f"/namespaces/{name}/tags").json()["tags"])
    assert tags == ["a", "b", "c", "e"]
    dup = admin.post(f"/namespaces/{name}/tags", json={"tags": [{"name": "z"}, {"name": "z"}]})
    assert dup.status_code == 409

    # resource type associations
    assert (
        admin.post(f"/namespaces/{name}/resource_types", json={"name": "OS::Nova::Flavor"}).status_code == 201
    )
    assocs = admin.get(f"/namespaces/{name}/resource_types").json()["resource_type_associations"]
    assert {a["name"] for a in assocs} == {"OS::Glance::Image", "OS::Nova::Flavor"}
    listed = admin.get("/namespaces", params={"resource_types": "OS::Nova::Flavor"}).json()["namespaces"]
    assert name in [n["namespace"] for n in listed]

    # unprotect, make private: the demo project no longer sees it; then delete everything
    r = admin.put(
        f"/namespaces/{name}", json={"namespace": name, "visibility": "private", "protected": False}
    )
    assert r.status_code == 200 and r.json()["protected"] is False
    assert demo.get(f"/namespaces/{name}").status_code == 404
    assert name not in [n["namespace"] for n in demo.get("/namespaces").json()["namespaces"]]
    for coll in ("objects", "properties", "tags"):
        assert admin.delete(f"/namespaces/{name}/{coll}").status_code == 204
    assert admin.get(f"/namespaces/{name}/tags").json()["tags"] == []
    assert admin.delete(f"/namespaces/{name}/resource_types/OS::Nova::Flavor").status_code == 204
    assert admin.delete(f"/namespaces/{name}").status_code == 204
    assert admin.get(f"/namespaces/{name}").status_code == 404


def test_bad_input(admin: httpx.Client):
    assert admin.post("/namespaces", json={"visibility": "public"}).status_code == 400
    assert (
        admin.post("/namespaces", json={"namespace": unique("ns"), "visibility": "shared"}).status_code == 400
    )
    assert admin.post("/namespaces", json=["x"]).status_code == 400
    assert admin.get("/namespaces/nope-nope").status_code == 404
    assert admin.get("/namespaces", params={"limit": "x"}).status_code == 400
