"""user admin controls: disabled accounts and per-user AI budget overrides

Revision ID: 0004
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("budget_tokens_per_day", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("budget_usd_per_month", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("budget_usd_per_month")
        batch_op.drop_column("budget_tokens_per_day")
        batch_op.drop_column("disabled")
