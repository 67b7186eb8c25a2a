"""Editorial state that lives with the index: the synonym and curation rule sets, versioned on disk."""
