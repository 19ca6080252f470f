"""Where an adapter goes after training: a SentenceTransformer export with its model card, stored vectors
transformed (`apply`), and a LanceDB index with search."""
