"""Developer tools that are not part of any service: `python -m tools.docsgen` writes the
documentation site's generated reference pages."""
