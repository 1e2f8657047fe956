"""docs/sources.md's table of sources is the one the source modules generate."""

from pathlib import Path

from costline.processor.ingest.normalize.sources import docs_table

DOC = Path(__file__).resolve().parents[3] / "docs" / "sources.md"


def test_the_sources_table_in_the_docs_is_generated_from_the_modules():
    text = DOC.read_text()
    start, end = "<!-- sources-table:start -->\n", "<!-- sources-table:end -->"
    assert text[text.index(start) + len(start):text.index(end)] == docs_table(), (
        "regenerate: python -m costline.processor.ingest.normalize.sources")
