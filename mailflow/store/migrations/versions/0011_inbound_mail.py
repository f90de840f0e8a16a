"""inbound mail: received messages, suppressions, bounces on outbox rows

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bounce_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("bounce_diagnostic", sa.Text(), nullable=True))
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("mail_from", sa.String(length=320), nullable=False),
        sa.Column("rcpt_to", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("became", sa.Text(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("sale_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        for column in ("received_at", "verdict", "outbox_id", "sale_id"):
            batch_op.create_index(
                batch_op.f(f"ix_inbound_messages_{column}"), [column], unique=False
            )
    op.create_table(
        "suppressions",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email"),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        for column in ("received_at", "verdict", "outbox_id", "sale_id"):
            batch_op.drop_index(batch_op.f(f"ix_inbound_messages_{column}"))
    op.drop_table("inbound_messages")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("bounce_diagnostic")
        batch_op.drop_column("bounce_status")
