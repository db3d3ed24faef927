"""The small judge's network: a sentence encoder read through the mean of its token states
(how all-MiniLM-L6-v2 was trained to be read), tuned contrastively on groups of labelled
exchanges. Imported only where torch is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel
from transformers.modeling_outputs import SequenceClassifierOutput


def mean_pooled(encoder: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor
                ) -> torch.Tensor:
    """Unit-length mean of the token states: the sentence embedding MiniLM was trained for."""
    hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


class PairEncoder(torch.nn.Module):
    """A sentence encoder tuned contrastively (the SetFit recipe, over whole groups): within
    a group of exchanges the cosine of two embeddings is pulled to 1 where both carry the same
    label under the same rule and to 0 where the labels or the (unrelated) rules differ.
    ``Trainer`` calls :meth:`forward` with one group and its targets; every pair but an
    exchange with itself counts."""

    def __init__(self, encoder: Any) -> None:
        super().__init__()
        self.encoder = encoder

    @classmethod
    def from_encoder(cls, folder: str | Path) -> PairEncoder:
        return cls(AutoModel.from_pretrained(str(folder)))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor | None = None) -> SequenceClassifierOutput:
        emb = mean_pooled(self.encoder, input_ids, attention_mask)
        cos = emb @ emb.T
        loss = None
        if labels is not None:
            m = 1.0 - torch.eye(len(cos), dtype=cos.dtype)
            loss = (((cos - labels.to(cos.dtype)) ** 2) * m).sum() / m.sum().clamp(min=1.0)
        return SequenceClassifierOutput(loss=loss, logits=cos)  # type: ignore[arg-type]

    def save(self, folder: str | Path) -> None:
        self.encoder.save_pretrained(str(folder))


class GroupCollator:
    """One group per step: pads its exchanges and builds the pair targets (same rule and
    label: 1, else 0). Every pair but an exchange with itself counts: a group holds one
    rule's exchanges and those of a rule unrelated to it."""

    def __init__(self, tokenizer: Any) -> None:
        self.tok = tokenizer

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if len(batch) != 1:
            from rulealign.errors import RulealignError, diagnostic

            raise RulealignError(diagnostic(
                "RA453", path="training", reason=f"one group per step, got {len(batch)} "
                "(per_device_train_batch_size must be 1)"))
        group = batch[0]
        padded = self.tok.pad([{"input_ids": ids} for ids in group["input_ids"]],
                              return_tensors="pt")
        rule = torch.tensor(group["rule"])
        label = torch.tensor(group["label"])
        targets = ((rule[:, None] == rule[None, :]) &
                   (label[:, None] == label[None, :])).float()
        return {"input_ids": padded["input_ids"], "attention_mask": padded["attention_mask"],
                "labels": targets}
