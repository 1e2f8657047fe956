from tests.processor.core.conftest import db_url  # noqa: F401 - the same SQLite and PostgreSQL fixture
