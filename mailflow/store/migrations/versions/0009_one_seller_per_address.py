"""one seller per address (case-insensitive)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    shared = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT lower(email), COUNT(*) FROM sellers GROUP BY lower(email) "
                "HAVING COUNT(*) > 1 ORDER BY 1"
            )
        )
        .all()
    )
    if shared:
        listed = ", ".join(f"{email} ({count} sellers)" for email, count in shared[:10])
        raise RuntimeError(
            "sellers must have an address each before this upgrade, and these share one: "
            f"{listed}. Change the address of all but one (UPDATE sellers SET email = … "
            "WHERE id = …), then upgrade again; nothing was changed."
        )
    op.create_index("uq_sellers_email_lower", "sellers", [sa.text("lower(email)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_sellers_email_lower", table_name="sellers")
