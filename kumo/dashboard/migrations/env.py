from kumo.common.migration_env import run
from kumo.dashboard.models import DashboardBase

run(DashboardBase.metadata)
