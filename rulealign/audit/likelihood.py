"""Likelihood scoring: how much more probable a model finds the compliant response.

For a prompt (chat messages) and a response, the score is the sum of the response tokens'
log-probabilities under the model, with the chat template applied exactly as in training.
Pairs are scored in padded batches; the length-normalised variant divides by the number of
response tokens. Cheap, needs no judge, and works before and after training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Chat = list[dict[str, str]]


@dataclass(frozen=True)
class SeqScore:
    logp: float
    tokens: int

    @property
    def mean(self) -> float:
        return self.logp / max(self.tokens, 1)


@dataclass(frozen=True)
class PairScore:
    chosen: SeqScore
    rejected: SeqScore

    @property
    def margin(self) -> float:
        return self.chosen.logp - self.rejected.logp

    @property
    def margin_normalised(self) -> float:
        return self.chosen.mean - self.rejected.mean

    @property
    def prefers_chosen(self) -> bool:
        """Per token: a summed margin would favour the shorter response."""
        return self.margin_normalised > 0


def _encode(tokenizer: Any, prompt: Chat, response: str) -> tuple[list[int], int]:
    """Token ids of prompt + response (templated) and where the response starts."""
    head = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": response}],
                                         tokenize=False)
    head_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    if full_ids[:len(head_ids)] != head_ids:  # template re-tokenised differently: fall back
        full_ids = head_ids + tokenizer(full[len(head):], add_special_tokens=False)["input_ids"]
    return full_ids, len(head_ids)


def score_sequences(model: Any, tokenizer: Any, items: Sequence[tuple[Chat, str]], *,
                    batch_size: int = 8, max_length: int = 1024) -> list[SeqScore]:
    """Sum of response-token log-probabilities for each (prompt, response).

    Sequences are batched by length and padded on the left, so every response ends at the
    right edge: the vocabulary projection and log-softmax (most of the cost of a small model
    with a large vocabulary) run on the response positions only (``logits_to_keep``)."""
    import torch

    device = next(model.parameters()).device
    encoded = [_encode(tokenizer, p, r) for p, r in items]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scores: list[SeqScore | None] = [None] * len(encoded)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    model.eval()
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        chunk = []
        for i in idx:
            ids, cut = encoded[i]
            drop = max(0, len(ids) - max_length)
            chunk.append((ids[drop:], max(1, cut - drop)))
        width = max(len(ids) for ids, _ in chunk)
        keep = max(len(ids) - cut for ids, cut in chunk) + 1   # + the position before
        input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (ids, _) in enumerate(chunk):
            input_ids[row, width - len(ids):] = torch.tensor(ids)
            mask[row, width - len(ids):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                           position_ids=positions.to(device), logits_to_keep=keep).logits
            # logits[:, j] predicts the token at width - keep + j + 1
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            target = input_ids[:, width - keep + 1:].to(device)
            token_logp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        for row, (i, (ids, cut)) in enumerate(zip(idx, chunk, strict=True)):
            n = len(ids) - cut                                   # response tokens
            span = token_logp[row, keep - 1 - n:]
            scores[i] = SeqScore(float(span.sum()), int(span.numel()))
    return [s for s in scores if s is not None]


def score_pairs(model: Any, tokenizer: Any, pairs: Sequence[tuple[Chat, str, str]], *,
                batch_size: int = 8) -> list[PairScore]:
    """Score (prompt, chosen, rejected) triples; chosen and rejected share batches."""
    flat: list[tuple[Chat, str]] = []
    for prompt, chosen, rejected in pairs:
        flat += [(prompt, chosen), (prompt, rejected)]
    seq = score_sequences(model, tokenizer, flat, batch_size=batch_size)
    return [PairScore(seq[2 * i], seq[2 * i + 1]) for i in range(len(pairs))]


def load_scoring_model(path: str, adapter: str | None = None) -> tuple[Any, Any]:
    """A model (with its LoRA adapter applied, unmerged) and tokenizer for scoring."""
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    auto: Any = transformers.AutoModelForCausalLM
    model = auto.from_pretrained(path, dtype=torch.float32)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    return model.eval(), tokenizer
