"""The shared PostgreSQL fixture really starts a server that answers queries."""

import uuid


def test_postgres_fixture_creates_isolated_databases(postgres_server):
    name = "t_" + uuid.uuid4().hex[:8]
    dsn = postgres_server.create_database(name)
    assert dsn.endswith("/" + name)
    assert postgres_server.psql("SELECT current_database()", dbname=name).strip() == name
