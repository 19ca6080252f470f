"""Texts (or a user's own vectors) to cached base vectors: the frozen encoder and its backends, the offline
models, precomputed vectors, the embedding cache, Ray encode and the `encode` command."""
