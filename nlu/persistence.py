"""Saving and loading a trained model as plain NumPy arrays and JSON: nothing is unpickled.

The model is one file, ``model.npz``, replaced atomically so a reloading hub never reads half a
model. It holds only numeric arrays (weights, biases, IDF weights), the vocabularies as UTF-8
text and the metadata as JSON text; `numpy.load` runs with ``allow_pickle=False``, so a tampered
file can at worst give wrong numbers, never run code. ``model.json`` is a copy of the metadata
for people and tools to read; loading does not use it.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["METADATA_FILE", "MODEL_FILE", "ModelFileError", "read", "write"]

MODEL_FILE = "model.npz"
METADATA_FILE = "model.json"
_SEPARATOR = "\n"  # terms never contain a newline: they come from whitespace-split text


class ModelFileError(ValueError):
    """A model file that is missing, damaged, or holds something other than plain arrays."""


def write(
    directory: str | Path,
    *,
    arrays: dict[str, np.ndarray],
    vocabularies: dict[str, dict[str, int]],
    metadata: dict[str, Any],
) -> None:
    """Write ``model.npz`` (atomically) and ``model.json`` into ``directory``."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    content: dict[str, np.ndarray] = dict(arrays)
    for name, vocabulary in vocabularies.items():
        terms = sorted(vocabulary, key=vocabulary.__getitem__)
        if any(_SEPARATOR in term for term in terms):
            raise ValueError(f"vocabulary {name!r} has a term with a newline")
        content[f"vocabulary_{name}"] = _text(_SEPARATOR.join(terms))
    text = json.dumps(metadata, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    content["metadata"] = _text(text)
    buffer = io.BytesIO()
    np.savez(buffer, **content)  # type: ignore[arg-type]
    _replace(folder / MODEL_FILE, buffer.getvalue())
    _replace(folder / METADATA_FILE, text.encode("utf-8"))


def read(
    directory: str | Path,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, int]], dict[str, Any]]:
    """Arrays, vocabularies and metadata of a model written by `write`."""
    path = Path(directory) / MODEL_FILE
    try:
        with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as stored:
            content = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ModelFileError(f"{path}: not a readable model ({e})") from e
    try:
        metadata = json.loads(_untext(content.pop("metadata")))
        vocabularies = {
            name.removeprefix("vocabulary_"): _vocabulary(_untext(content.pop(name)))
            for name in [n for n in content if n.startswith("vocabulary_")]
        }
    except (KeyError, ValueError) as e:
        raise ModelFileError(f"{path}: damaged model ({e})") from e
    for name, array in content.items():
        if array.dtype.kind not in "fiu":
            raise ModelFileError(f"{path}: array {name!r} is not numeric ({array.dtype})")
    return content, vocabularies, metadata


def _text(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _untext(array: np.ndarray) -> str:
    if array.dtype != np.uint8:
        raise ValueError(f"text stored as {array.dtype}, not bytes")
    return array.tobytes().decode("utf-8")


def _vocabulary(text: str) -> dict[str, int]:
    return {term: column for column, term in enumerate(text.split(_SEPARATOR))} if text else {}


def _replace(path: Path, content: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
