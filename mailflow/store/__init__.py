"""The database: SQLModel tables, the engine, transactions and Alembic migrations."""
