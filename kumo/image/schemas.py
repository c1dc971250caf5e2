"""The JSON Schema documents of /v2/schemas/* and the attribute rules they state."""

from __future__ import annotations

import copy
from typing import Any

from kumo.image.formats import CONTAINER_FORMATS, DISK_FORMATS

VISIBILITIES = ("public", "private", "shared", "community")
STATUSES = (
    "queued",
    "saving",
    "active",
    "killed",
    "deleted",
    "uploading",
    "importing",
    "pending_delete",
    "deactivated",
)
MEMBER_STATUSES = ("pending", "accepted", "rejected")

# Attributes nobody may set; "reserved" ones are Glance-internal.
READ_ONLY = (
    "checksum",
    "created_at",
    "size",
    "status",
    "updated_at",
    "virtual_size",
    "id",
    "os_hash_algo",
    "os_hash_value",
    "direct_url",
    "self",
    "file",
    "schema",
    "stores",
)
RESERVED = ("location", "deleted", "deleted_at")
RESERVED_PREFIX = "os_glance"
CORE = (
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "min_disk",
    "min_ram",
    "owner",
    "container_format",
    "disk_format",
    "created_at",
    "updated_at",
    "tags",
    "self",
    "file",
    "schema",
    "locations",
    "direct_url",
    "stores",
)


def _image_properties() -> dict[str, Any]:
    def s(desc: str, **extra: Any) -> dict[str, Any]:
        return {"description": desc, **extra}

    return {
        "id": s(
            "An identifier for the image",
            type="string",
            pattern="^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$",
        ),
        "name": s("Descriptive name for the image", type=["null", "string"], maxLength=255),
        "status": s("Status of the image", type="string", readOnly=True, enum=list(STATUSES)),
        "visibility": s("Scope of image accessibility", type="string", enum=list(VISIBILITIES)),
        "protected": s("If true, image will not be deletable.", type="boolean"),
        "os_hidden": s("If true, image will not appear in default image list response.", type="boolean"),
        "checksum": s("md5 hash of image contents.", type=["null", "string"], readOnly=True, maxLength=32),
        "os_hash_algo": s(
            "Algorithm to calculate the os_hash_value", type=["null", "string"], readOnly=True, maxLength=64
        ),
        "os_hash_value": s(
            "Hexdigest of the image contents using the algorithm specified by the os_hash_algo",
            type=["null", "string"],
            readOnly=True,
            maxLength=128,
        ),
        "owner": s("Owner of the image", type=["null", "string"], maxLength=255),
        "size": s("Size of image file in bytes", type=["null", "integer"], readOnly=True),
        "virtual_size": s("Virtual size of image in bytes", type=["null", "integer"], readOnly=True),
        "container_format": s(
            "Format of the container", type=["null", "string"], enum=[None, *CONTAINER_FORMATS]
        ),
        "disk_format": s("Format of the disk", type=["null", "string"], enum=[None, *DISK_FORMATS]),
        "created_at": s("Date and time of image registration", type="string", readOnly=True),
        "updated_at": s("Date and time of the last image modification", type="string", readOnly=True),
        "tags": s(
            "List of strings related to the image", type="array", items={"type": "string", "maxLength": 255}
        ),
        "direct_url": s("URL to access the image file kept in external store", type="string", readOnly=True),
        "min_ram": s("Amount of ram (in MB) required to boot image.", type="integer"),
        "min_disk": s("Amount of disk space (in GB) required to boot image.", type="integer"),
        "self": s("An image self url", type="string", readOnly=True),
        "file": s("An image file url", type="string", readOnly=True),
        "stores": s(
            "Store in which image data resides.  Only present when the operator has enabled "
            "multiple stores.  May be a comma-separated list of store identifiers.",
            type="string",
            readOnly=True,
        ),
        "schema": s("An image schema url", type="string", readOnly=True),
        "locations": s(
            "A set of URLs to access the image file kept in external store",
            type="array",
            items={
                "type": "object",
                "properties": {
                    "url": {"type": "string", "maxLength": 255},
                    "metadata": {"type": "object"},
                    "validation_data": {"type": "object"},
                },
                "required": ["url", "metadata"],
            },
        ),
        "kernel_id": s(
            "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image.",
            type=["null", "string"],
            pattern="^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$",
            is_base=False,
        ),
        "ramdisk_id": s(
            "ID of image stored in Glance that should be used as the ramdisk when booting an "
            "AMI-style image.",
            type=["null", "string"],
            pattern="^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$",
            is_base=False,
        ),
        "os_distro": s(
            "Common name of operating system distribution as specified in "
            "https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html",
            type="string",
            is_base=False,
        ),
        "os_version": s(
            "Operating system version as specified by the distributor", type="string", is_base=False
        ),
        "architecture": s(
            "Operating system architecture as specified in "
            "https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html",
            type="string",
            is_base=False,
        ),
        "instance_uuid": s(
            "Metadata which can be used to record which instance this image is associated "
            "with. (Informational only, does not create an instance snapshot.)",
            type="string",
            is_base=False,
        ),
    }


_LINKS = [
    {"rel": "self", "href": "{self}"},
    {"rel": "enclosure", "href": "{file}"},
    {"rel": "describedby", "href": "{schema}"},
]


def image_schema() -> dict[str, Any]:
    return {
        "name": "image",
        "properties": _image_properties(),
        "additionalProperties": {"type": "string"},
        "links": copy.deepcopy(_LINKS),
    }


def images_schema() -> dict[str, Any]:
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def member_schema() -> dict[str, Any]:
    return {
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "image_id": {
                "type": "string",
                "description": "An identifier for the image",
                "pattern": _image_properties()["id"]["pattern"],
            },
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "status": {
                "type": "string",
                "description": "The status of this image member",
                "enum": list(MEMBER_STATUSES),
            },
            "updated_at": {
                "type": "string",
                "description": "Date and time of last modification of image member",
            },
            "schema": {"readOnly": True, "type": "string"},
        },
    }


def members_schema() -> dict[str, Any]:
    return {
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": member_schema()},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "schema", "href": "{schema}"}],
    }


def task_schema() -> dict[str, Any]:
    return {
        "name": "task",
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string", "enum": ["import", "api_image_import", "location_import"]},
            "status": {"type": "string", "enum": ["pending", "processing", "success", "failure"]},
            "input": {"type": ["null", "object"]},
            "result": {"type": ["null", "object"]},
            "owner": {"type": "string"},
            "message": {"type": "string"},
            "image_id": {"type": "string"},
            "request_id": {"type": "string"},
            "user_id": {"type": "string"},
            "expires_at": {"type": ["null", "string"]},
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "self": {"type": "string"},
            "schema": {"type": "string"},
        },
    }


SCHEMAS = {
    "image": image_schema,
    "images": images_schema,
    "member": member_schema,
    "members": members_schema,
    "task": task_schema,
}


# -- metadata definitions (metadefs) schemas ----------------------------------------------

_STAMPS = {
    "created_at": {
        "type": "string",
        "readOnly": True,
        "format": "date-time",
        "description": "Date and time of creation (READ-ONLY)",
    },
    "updated_at": {
        "type": "string",
        "readOnly": True,
        "format": "date-time",
        "description": "Date and time of the last modification (READ-ONLY)",
    },
}
_PROPERTY = {
    "type": "object",
    "required": ["title", "type"],
    "properties": {
        "name": {"type": "string", "maxLength": 255},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "operators": {"type": "array", "items": {"type": "string"}},
        "type": {
            "type": "string",
            "enum": ["array", "boolean", "integer", "number", "object", "string", None],
        },
        "readonly": {"type": "boolean"},
        "default": {},
        "maximum": {"type": "number"},
        "minimum": {"type": "number"},
        "maxLength": {"type": "integer", "minimum": 0},
        "minLength": {"type": "integer", "minimum": 0},
        "pattern": {"type": "string", "format": "regex"},
        "enum": {"type": "array"},
        "items": {"type": "object"},
        "maxItems": {"type": "integer", "minimum": 0},
        "minItems": {"type": "integer", "minimum": 0},
        "uniqueItems": {"type": "boolean", "default": False},
        "additionalItems": {"type": "boolean"},
    },
}


def _collection(name: str, item: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            key or name: {"type": "array", "items": item},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def md_namespace() -> dict[str, Any]:
    return {
        "name": "namespace",
        "description": "A namespace that groups metadata definitions.",
        "additionalProperties": False,
        "required": ["namespace"],
        "properties": {
            "namespace": {"type": "string", "maxLength": 80, "description": "The unique namespace text."},
            "display_name": {"type": "string", "maxLength": 80},
            "description": {"type": "string", "maxLength": 500},
            "visibility": {"type": "string", "enum": ["public", "private"]},
            "protected": {"type": "boolean"},
            "owner": {"type": "string", "maxLength": 255},
            "self": {"type": "string"},
            "schema": {"type": "string"},
            "resource_type_associations": {"type": "array", "items": md_resource_type()},
            "properties": {"type": "object", "additionalProperties": _PROPERTY},
            "objects": {"type": "array", "items": md_object()},
            "tags": {"type": "array", "items": md_tag()},
            **_STAMPS,
        },
    }


def md_resource_type() -> dict[str, Any]:
    return {
        "name": "resource_type_association",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": {
                "type": "string",
                "maxLength": 80,
                "description": "Resource type names should be aligned with Heat resource types "
                "whenever possible, e.g. OS::Glance::Image",
            },
            "prefix": {"type": "string", "maxLength": 80},
            "properties_target": {"type": "string", "maxLength": 80},
            **_STAMPS,
        },
    }


def md_object() -> dict[str, Any]:
    return {
        "name": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "maxLength": 80},
            "description": {"type": "string"},
            "required": {"type": "array", "items": {"type": "string"}},
            "properties": {"type": "object", "additionalProperties": _PROPERTY},
            "schema": {"type": "string", "readOnly": True},
            "self": {"type": "string", "readOnly": True},
            **_STAMPS,
        },
    }


def md_property() -> dict[str, Any]:
    prop = copy.deepcopy(_PROPERTY)
    prop["name"] = "property"
    prop["required"] = ["name", "title", "type"]
    prop["additionalProperties"] = False
    return prop


def md_tag() -> dict[str, Any]:
    return {
        "name": "tag",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {"name": {"type": "string", "maxLength": 255}, **_STAMPS},
    }


SCHEMAS.update(
    {
        "metadefs/namespace": md_namespace,
        "metadefs/namespaces": lambda: _collection("namespaces", md_namespace()),
        "metadefs/resource_type": md_resource_type,
        "metadefs/resource_types": lambda: _collection("resource_type_associations", md_resource_type()),
        "metadefs/object": md_object,
        "metadefs/objects": lambda: _collection("objects", md_object()),
        "metadefs/property": md_property,
        "metadefs/properties": lambda: {
            "name": "properties",
            "properties": {
                "properties": {"type": "object", "additionalProperties": md_property()},
                "schema": {"type": "string"},
            },
            "links": [{"rel": "describedby", "href": "{schema}"}],
        },
        "metadefs/tag": md_tag,
        "metadefs/tags": lambda: _collection("tags", md_tag()),
    }
)
