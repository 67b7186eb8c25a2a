"""From the publisher's records to clean articles: reading sources, validating, rendering markdown."""
