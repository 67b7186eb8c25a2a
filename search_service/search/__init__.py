"""Answering a query: the query language, planning, ranking stages, snippets, facets and suggestions."""
