"""room privacy: history visibility, join seqs, files bound to their room row

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "history_visibility", sa.String(length=16), server_default="shared", nullable=False
            )
        )
        batch_op.create_index("ix_rooms_owner", ["owner"], unique=False)
    # A private room's second member can be replaced: the newcomer sees only what
    # was sent since they joined. Group and shared rooms keep all history visible.
    op.execute("UPDATE rooms SET history_visibility = 'joined' WHERE room_type = 'private'")

    # Existing members could read the whole history already: they start at 0.
    with op.batch_alter_table("room_members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("joined_seq", sa.BigInteger(), server_default="0", nullable=False)
        )

    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "room_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
        batch_op.create_foreign_key(
            "fk_files_room_pk", "rooms", ["room_pk"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_index("ix_files_room_pk", ["room_pk"], unique=False)
    # A file belongs to the room row that existed when it was shared; one whose room
    # was deleted (and perhaps re-created under the same id since) is unpublished.
    op.execute(
        "UPDATE files SET room_pk = (SELECT rooms.id FROM rooms WHERE rooms.room_id = files.room_id "
        "AND rooms.created_at <= files.created_at) WHERE room_id IS NOT NULL"
    )
    op.execute("DELETE FROM files WHERE room_id IS NOT NULL AND room_pk IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_index("ix_files_room_pk")
        batch_op.drop_constraint("fk_files_room_pk", type_="foreignkey")
        batch_op.drop_column("room_pk")
    with op.batch_alter_table("room_members", schema=None) as batch_op:
        batch_op.drop_column("joined_seq")
    with op.batch_alter_table("rooms", schema=None) as batch_op:
        batch_op.drop_index("ix_rooms_owner")
        batch_op.drop_column("history_visibility")
