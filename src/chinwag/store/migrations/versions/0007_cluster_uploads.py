"""uploads in progress in the database

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("file_id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("room_id", sa.String(length=64), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("extension", sa.String(length=16), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("chunk_size", sa.BigInteger(), nullable=False),
        sa.Column("total_chunks", sa.Integer(), nullable=False),
        sa.Column("handle", sa.String(length=1024), nullable=False),
        sa.Column("last_active", sa.Float(), nullable=False),
        sa.Column("finalizing_since", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("file_id"),
    )
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_uploads_owner"), ["owner"], unique=False)
        batch_op.create_index(batch_op.f("ix_uploads_last_active"), ["last_active"], unique=False)

    op.create_table(
        "upload_chunks",
        sa.Column("file_id", sa.String(length=64), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["uploads.file_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("file_id", "chunk_index"),
    )


def downgrade() -> None:
    op.drop_table("upload_chunks")
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_uploads_last_active"))
        batch_op.drop_index(batch_op.f("ix_uploads_owner"))
    op.drop_table("uploads")
