"""personal streams: room ids one longer, for '@' + a username of 64

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite enforces no VARCHAR length, and rebuilding `rooms` there would drop the
    # rows that cascade from it (room files): only PostgreSQL needs the change.
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column(
        "rooms",
        "room_id",
        existing_type=sa.String(length=64),
        type_=sa.String(length=65),
        existing_nullable=False,
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column(
        "rooms",
        "room_id",
        existing_type=sa.String(length=65),
        type_=sa.String(length=64),
        existing_nullable=False,
    )
