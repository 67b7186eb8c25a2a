"""The Tantivy index on disk: schema, documents, generations, the indexer, the journal and the reader."""
