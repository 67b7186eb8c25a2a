"""Semantic ranking ([semantic] extra): the embedding model, stored vectors and the ANN graph."""
