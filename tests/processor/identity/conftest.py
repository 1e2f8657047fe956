from tests.processor.conftest import db_url  # noqa: F401 - the fixture: SQLite and a fresh PostgreSQL database
