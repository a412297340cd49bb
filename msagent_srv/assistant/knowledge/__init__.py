"""Knowledge retrieval over uploaded files: loaders, chunking, embeddings, a Qdrant store, hybrid search."""
