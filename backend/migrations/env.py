"""Alembic environment: the app passes its own connection; the CLI builds one from settings."""
import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from app.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_from_cli() -> None:
    from app.config import get_settings
    from app.db import Database

    async def go() -> None:
        db = Database(get_settings().database_url)
        try:
            async with db.engine.begin() as conn:
                await conn.run_sync(_run)
        finally:
            await db.dispose()

    asyncio.run(go())


connection = context.config.attributes.get("connection")
if connection is None:
    _run_from_cli()
else:
    _run(connection)
