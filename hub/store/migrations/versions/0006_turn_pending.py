"""message.turn_pending: a customer message whose bot turn has not finished yet

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 08:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(
            sa.Column("turn_pending", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.create_index("ix_message_turn_pending", ["turn_pending"])


def downgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.drop_index("ix_message_turn_pending")
        batch.drop_column("turn_pending")
