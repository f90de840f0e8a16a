"""seller tiers and rate indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sales", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sales_seller_created"))
        batch_op.create_index(
            "ix_sales_seller_created", ["seller_id", "created_at", "status"], unique=False
        )
        batch_op.create_index(
            "ix_sales_created_seller", ["created_at", "seller_id", "status"], unique=False
        )

    with op.batch_alter_table("sellers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tier", sa.String(length=16), nullable=False, server_default="ok")
        )
        batch_op.add_column(sa.Column("tier_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("tier_version", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("sellers", schema=None) as batch_op:
        batch_op.drop_column("tier_version")
        batch_op.drop_column("tier_since")
        batch_op.drop_column("tier")

    with op.batch_alter_table("sales", schema=None) as batch_op:
        batch_op.drop_index("ix_sales_created_seller")
        batch_op.drop_index("ix_sales_seller_created")
        batch_op.create_index(
            batch_op.f("ix_sales_seller_created"), ["seller_id", "created_at"], unique=False
        )
