from kumo.common.migration_env import run
from kumo.runtime.node.models import NodeBase

run(NodeBase.metadata)
