"""image locations (several stores per image)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 12:05:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("image_images") as batch:
        batch.add_column(sa.Column("locations", sa.JSON(), nullable=True))
    conn = op.get_bind()
    images = sa.table(
        "image_images",
        sa.column("id", sa.String),
        sa.column("store", sa.String),
        sa.column("location", sa.Text),
        sa.column("locations", sa.JSON),
    )
    rows = conn.execute(
        sa.select(images.c.id, images.c.store, images.c.location).where(images.c.location.is_not(None))
    )
    for image_id, store, location in rows.all():
        locs = [{"url": location, "metadata": {"store": store}, "store": store}]
        conn.execute(sa.update(images).where(images.c.id == image_id).values(locations=locs))


def downgrade() -> None:
    with op.batch_alter_table("image_images") as batch:
        batch.drop_column("locations")
