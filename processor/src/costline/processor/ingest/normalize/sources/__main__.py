"""Print docs/sources.md's table of span sources."""

from costline.processor.ingest.normalize.sources import docs_table

print(docs_table(), end="")
