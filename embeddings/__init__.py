"""Item text → normalised vectors (sentence-transformers), and the FAISS index keyed by item id."""
