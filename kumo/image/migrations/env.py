from kumo.common.migration_env import run
from kumo.image.models import ImageBase

run(ImageBase.metadata)
