"""Create a PostgreSQL database if it does not exist: `python bench/pg_database.py postgresql://.../name`
(for `make run-cluster` and the load benchmark)."""

from __future__ import annotations

import asyncio
import sys

import asyncpg


async def ensure(url: str) -> None:
    server, name = url.replace("postgresql+asyncpg://", "postgresql://", 1).rsplit("/", 1)
    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(ensure(sys.argv[1]))
