"""image pre-cache requests (microversion 2.81), hypervisor uptime

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 19:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compute_image_cache",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.Column("aggregate_id", sa.Integer(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("host", "image_id", name="uq_compute_image_cache_host_image"),
    )
    with op.batch_alter_table("compute_image_cache", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_compute_image_cache_host"), ["host"], unique=False)
    with op.batch_alter_table("compute_nodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uptime", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("compute_nodes", schema=None) as batch_op:
        batch_op.drop_column("uptime")
    with op.batch_alter_table("compute_image_cache", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_compute_image_cache_host"))
    op.drop_table("compute_image_cache")
