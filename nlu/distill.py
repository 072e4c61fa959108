"""Distil static subword vectors (`nlu.vectors`) from a sentence encoder, once, offline.

    python -m nlu.distill --model DIR --out data/vectors/NAME [--dimensions 256]

``DIR`` is a local Hugging Face / sentence-transformers model folder (config.json, weights,
tokenizer.json). Needs torch and transformers, which the hub itself does not: install them only
where vectors are built (`make vectors`). Each vocabulary token is encoded alone between the
model's [CLS] and [SEP] and mean-pooled, as sentence-transformers pools; the outputs are
centred, reduced by PCA and weighted by log(1 + token id), since WordPiece vocabularies list
frequent tokens first and rarer tokens carry more of a sentence's meaning (model2vec's Zipf
weighting).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

from nlu.vectors import TOKENIZER_FILE, save


def distil(model_dir: Path, dimensions: int = 256, batch: int = 1024) -> tuple[object, np.ndarray]:
    """The model's tokenizer and the (vocabulary x dimensions) table."""
    import torch  # only here: building vectors is the one place that needs the encoder
    from tokenizers import Tokenizer
    from transformers import AutoModel

    tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    size = tokenizer.get_vocab_size()
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    if cls_id is None or sep_id is None:
        raise SystemExit(f"{model_dir}: a WordPiece tokenizer with [CLS] and [SEP] is needed")
    outputs = np.zeros((size, model.config.hidden_size), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, size, batch):
            ids = torch.arange(start, min(size, start + batch)).unsqueeze(1)
            inputs = torch.cat([torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], 1)
            hidden = model(
                input_ids=inputs, attention_mask=torch.ones_like(inputs)
            ).last_hidden_state
            outputs[start : start + len(ids)] = hidden.mean(dim=1).numpy()
    centred = outputs - outputs.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ components[:dimensions].T
    reduced /= np.linalg.norm(reduced, axis=1, keepdims=True) + 1e-12
    reduced *= np.log1p(np.arange(size, dtype=np.float32))[:, None]
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer, reduced.astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m nlu.distill", description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True, help="local model folder")
    p.add_argument("--out", type=Path, required=True, help="vectors folder to write")
    p.add_argument("--dimensions", type=int, default=256)
    args = p.parse_args(argv)
    started = time.perf_counter()
    tokenizer, table = distil(args.model, args.dimensions)
    weights = sorted(args.model.glob("*.safetensors")) + sorted(args.model.glob("*.bin"))
    source = {w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in weights}
    metadata = {
        "source": str(args.model.resolve()),
        "source_sha256": source,
        "method": "mean-pooled single-token outputs, centred, PCA, log(1 + id) weights",
        "dimensions": args.dimensions,
    }
    save(args.out, tokenizer, table, metadata)  # type: ignore[arg-type]
    print(
        f"{args.out}: {table.shape[0]} x {table.shape[1]} in {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
