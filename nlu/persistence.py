"""Saving and loading a trained pipeline: skops for the scikit-learn objects, JSON for the rest.

Loading never unpickles: skops rebuilds only the types it trusts, and every type it does not
trust by default must be on our allow-list of scikit-learn, NumPy and SciPy types, or the load
is refused.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import skops.io as sio
from sklearn.pipeline import Pipeline

__all__ = ["METADATA_FILE", "PIPELINE_FILE", "UntrustedModelError", "read", "write"]

PIPELINE_FILE = "pipeline.skops"
METADATA_FILE = "model.json"

# Types a pipeline of features.build_pipeline() may contain beyond what skops trusts by default
# (it trusts all of them in skops 0.16; older or newer releases may not).
ALLOWED_TYPES = frozenset(
    {
        "sklearn.pipeline.Pipeline",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.feature_extraction.text.TfidfVectorizer",
        "sklearn.feature_extraction.text.TfidfTransformer",
        "sklearn.linear_model._logistic.LogisticRegression",
        "numpy.dtype",
        "numpy.ndarray",
        "numpy.float64",
        "numpy.int32",
        "numpy.int64",
        "numpy.str_",
        "numpy.random.mtrand.RandomState",
        "scipy.sparse._csr.csr_matrix",
        "scipy.sparse._csr.csr_array",
        "builtins.slice",
        "builtins.str",
    }
)


class UntrustedModelError(ValueError):
    """A saved model holds types outside the allow-list; it is not loaded."""


def write(directory: str | Path, pipeline: Pipeline, metadata: dict[str, Any]) -> None:
    """Write both files, each replaced atomically so a reloading hub never reads half a model."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    _replace(folder / PIPELINE_FILE, sio.dumps(pipeline))
    text = json.dumps(metadata, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    _replace(folder / METADATA_FILE, text.encode("utf-8"))


def read(directory: str | Path) -> tuple[Pipeline, dict[str, Any]]:
    """Read a model written by `write`; raise `UntrustedModelError` on unexpected types."""
    folder = Path(directory)
    metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    content = (folder / PIPELINE_FILE).read_bytes()
    untrusted = sio.get_untrusted_types(data=content)
    refused = sorted(set(untrusted) - ALLOWED_TYPES)
    if refused:
        raise UntrustedModelError(
            f"{folder / PIPELINE_FILE}: refusing to load untrusted types: {', '.join(refused)}"
        )
    pipeline = sio.loads(content, trusted=untrusted)
    if not isinstance(pipeline, Pipeline):
        raise UntrustedModelError(f"{folder / PIPELINE_FILE}: not a scikit-learn Pipeline")
    return pipeline, metadata


def _replace(path: Path, content: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
