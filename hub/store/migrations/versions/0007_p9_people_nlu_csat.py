"""contacts' verified email/phone and person; labeled NLU examples; CSAT ratings

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import hub.store.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact") as batch:
        batch.add_column(
            sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True)
        )
        batch.add_column(
            sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
        batch.add_column(sa.Column("person_id", sa.Integer(), nullable=True))
        batch.create_index("ix_contact_email", ["email"])
        batch.create_index("ix_contact_phone", ["phone"])
        batch.create_index("ix_contact_person_id", ["person_id"])
    op.create_table(
        "nlu_example",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
        sa.Column("intent", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("labeled_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", hub.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_nlu_example_intent", "nlu_example", ["intent"])
    op.create_table(
        "csat_rating",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", hub.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"]),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_csat_rating_conversation_id", "csat_rating", ["conversation_id"])
    op.create_index("ix_csat_rating_agent_id", "csat_rating", ["agent_id"])
    op.create_index("ix_csat_rating_created_at", "csat_rating", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_csat_rating_created_at", table_name="csat_rating")
    op.drop_index("ix_csat_rating_agent_id", table_name="csat_rating")
    op.drop_index("ix_csat_rating_conversation_id", table_name="csat_rating")
    op.drop_table("csat_rating")
    op.drop_index("ix_nlu_example_intent", table_name="nlu_example")
    op.drop_table("nlu_example")
    with op.batch_alter_table("contact") as batch:
        batch.drop_index("ix_contact_person_id")
        batch.drop_index("ix_contact_phone")
        batch.drop_index("ix_contact_email")
        batch.drop_column("person_id")
        batch.drop_column("phone")
        batch.drop_column("email")
