from kumo.common.migration_env import run
from kumo.network.models import NetworkBase

run(NetworkBase.metadata)
