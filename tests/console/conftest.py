"""Console test fixtures: the same API suite runs on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from edgeplane.console import ConsoleConfig, create_admin_key, create_app
from tests.console.helpers import Api

_names = itertools.count()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'console.db'}"
    server = request.getfixturevalue("postgres_server")
    return server.create_database(f"console_{next(_names)}")


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    app = create_app(ConsoleConfig(db_url=db_url))
    with TestClient(app, base_url="http://console.test") as test_client:
        yield test_client


@pytest.fixture
def admin(client: TestClient, db_url: str) -> Api:
    return Api(client, create_admin_key(db_url))


@pytest.fixture
def other_tenant(client: TestClient, db_url: str) -> Api:
    return Api(client, create_admin_key(db_url, tenant="other", user="boss"))
