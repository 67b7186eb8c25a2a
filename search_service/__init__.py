"""A small search backend for a news site, built on Tantivy."""

__version__ = "0.1.0"
