"""outbox NOTIFY trigger on PostgreSQL

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27

A row queued in the outbox (inserted, or put back to ``queued``) signals the
``mailflow_outbox`` channel from the database itself: the commit delivers it to every
listening worker, and the transaction that queued the mail spends no round trip on it.
PostgreSQL folds identical notifications of one transaction into one. SQLite has no
listeners; its worker is woken in process.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION mailflow_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('mailflow_outbox', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER outbox_queued AFTER INSERT OR UPDATE OF status ON outbox
        FOR EACH ROW WHEN (NEW.status = 'queued') EXECUTE FUNCTION mailflow_outbox_notify()
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER outbox_queued ON outbox")
    op.execute("DROP FUNCTION mailflow_outbox_notify()")
