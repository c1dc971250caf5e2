from kumo.common.migration_env import run
from kumo.compute.models import ComputeBase

run(ComputeBase.metadata)
