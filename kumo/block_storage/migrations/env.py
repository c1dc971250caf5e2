from kumo.block_storage.models import BlockStorageBase
from kumo.common.migration_env import run

run(BlockStorageBase.metadata)
