"""AI replies' budget reservations, conversation branches

Revision ID: 0005
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ai_replies",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("conversation_id", sa.BigInteger(), nullable=True),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("running", sa.Boolean(), nullable=False),
        sa.Column("reserved_tokens", sa.BigInteger(), nullable=False),
        sa.Column("reserved_usd", sa.Float(), nullable=False),
        sa.Column("billed_tokens", sa.BigInteger(), nullable=False),
        sa.Column("billed_usd", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ai_replies_user_time", "ai_replies", ["username", "created_at"])
    op.create_index("ix_ai_replies_conversation", "ai_replies", ["conversation_id", "running"])
    with op.batch_alter_table("conversation_turns") as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_turns_parent", ["conversation_id", "parent_id"])
    # Conversations so far are single branches: each turn follows the one before it.
    op.execute(
        "UPDATE conversation_turns SET parent_id = (SELECT max(t.id) FROM conversation_turns t"
        " WHERE t.conversation_id = conversation_turns.conversation_id"
        " AND t.id < conversation_turns.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("conversation_turns") as batch_op:
        batch_op.drop_index("ix_turns_parent")
        batch_op.drop_column("parent_id")
    op.drop_index("ix_ai_replies_conversation", table_name="ai_replies")
    op.drop_index("ix_ai_replies_user_time", table_name="ai_replies")
    op.drop_table("ai_replies")
