from kumo.common.migration_env import run
from kumo.identity.models import IdentityBase

run(IdentityBase.metadata)
