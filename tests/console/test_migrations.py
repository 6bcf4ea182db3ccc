"""Schema migrations: applied in order once, recorded in schema_version, safe to run again."""

from __future__ import annotations

from edgeplane.console.db import Database


def test_migrations_apply_once(db_url: str) -> None:
    db = Database(db_url, pool_size=2)
    try:
        assert db.migrate() == 2
        assert db.migrate() == 2
        with db.transaction() as tx:
            versions = [r["version"] for r in tx.all("SELECT version FROM schema_version ORDER BY version")]
            tx.execute("UPDATE hosts SET pending_join = NULL")  # the column from migration 2 exists
        assert versions == [1, 2]
    finally:
        db.close()
