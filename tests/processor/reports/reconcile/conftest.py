from tests.processor.conftest import db_url  # noqa: F401 - the same SQLite and PostgreSQL fixture
