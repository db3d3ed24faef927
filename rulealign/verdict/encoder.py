"""The small judge's network: a sentence encoder, mean pooled, and a linear head.

all-MiniLM-L6-v2 was trained to be read through the mean of its token states, so the head
sits on that mean (the CLS position of this encoder carries little until trained, and a
BERT pooler would start from random weights). Imported only where torch is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel
from transformers.modeling_outputs import SequenceClassifierOutput

HEAD_FILE = "head.safetensors"


class MeanPoolClassifier(torch.nn.Module):
    def __init__(self, encoder: Any, n_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(encoder.config.hidden_size, n_labels)

    @classmethod
    def from_encoder(cls, folder: str | Path, n_labels: int) -> MeanPoolClassifier:
        return cls(AutoModel.from_pretrained(str(folder)), n_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> SequenceClassifierOutput:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        logits = self.head(self.dropout(pooled))
        loss = None
        if labels is not None:
            loss = torch.nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)  # type: ignore[arg-type]

    def save(self, folder: str | Path) -> None:
        from safetensors.torch import save_file

        self.encoder.save_pretrained(str(folder))
        save_file({k: v.contiguous() for k, v in self.head.state_dict().items()},
                  str(Path(folder) / HEAD_FILE))

    @classmethod
    def load(cls, folder: str | Path, n_labels: int) -> MeanPoolClassifier:
        from safetensors.torch import load_file

        model = cls.from_encoder(folder, n_labels)
        model.head.load_state_dict(load_file(str(Path(folder) / HEAD_FILE)))
        return model.eval()
