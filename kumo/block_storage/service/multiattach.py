"""Multi-attach volumes, with Cinder's rules.

A volume is multiattach when its volume type's extra spec ``multiattach`` is ``<is> True`` (or,
as the deprecated create flag still allows up to 3.70, when ``multiattach: true`` was in the
create body). Such a volume takes several attachments (each server at most once: the compute
API refuses a second attachment to the same server) and stays ``in-use`` while any remains.

Retype keeps the flag in step with the new type; a retype that would turn the flag on or off is
refused unless the volume is ``available`` (the hypervisors that have the volume open cannot
change how they share it).
"""

from __future__ import annotations

from kumo.block_storage.errors import BadRequest
from kumo.block_storage.models import Volume, VolumeType

SPEC = "multiattach"


def type_is_multiattach(vtype: VolumeType | None) -> bool:
    """Whether volumes of this type are multiattach (extra spec ``multiattach='<is> True'``)."""
    if vtype is None:
        return False
    value = (vtype.extra_specs or {}).get(SPEC)
    return isinstance(value, str) and value.strip().lower() == "<is> true"


def retype_target(v: Volume, new: VolumeType) -> bool:
    """The volume's multiattach flag after a retype to ``new``; 400 when the retype would change
    the flag of a volume that is not ``available``."""
    target = type_is_multiattach(new)
    if bool(v.multiattach) != target and v.status != "available":
        raise BadRequest(
            "Invalid input received: Invalid volume_type passed, retypes affecting multiattach are only "
            f"allowed on available volumes, the specified volume however currently has a status of: {v.status}."
        )
    return target
