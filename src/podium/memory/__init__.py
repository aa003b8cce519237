"""Memory: short-term (the run and its session) and long-term (namespaced, searchable by
meaning, erasable per subject), and the embeddings that make search by meaning work."""
