"""Measure a drafted spec against a hand annotation of its source document.

An annotation (``tests/data/gold/*.yaml``) lists every rule sentence of a document with its
modality (or two, where one sentence holds two rules), actor and action, plus sentences that
look like rules and are not. A draft rule is matched to the annotated sentence its text
contains (compared on letters and digits only); a draft matching no rule sentence is not a
real rule. The figures are those of issue 18: precision, recall of rule sentences, correct
modality and "fully usable" (real rule, right modality, an action that covers the annotated
action without running on).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})
_WORD = re.compile(r"[a-z0-9]+")


def norm(text: str) -> str:
    """Letters and digits only, lower case: how sentences are compared."""
    return "".join(_WORD.findall(text.translate(_QUOTES).lower()))


def words(text: str) -> list[str]:
    return _WORD.findall(text.translate(_QUOTES).lower().replace("'", ""))


@dataclass
class GoldSentence:
    s: str
    modalities: tuple[str, ...]
    actions: tuple[str, ...]
    actor: str | None
    optional: bool

    @property
    def is_rule(self) -> bool:
        return self.modalities != ("none",)


@dataclass
class Annotation:
    document: str
    split: str
    sentences: list[GoldSentence]

    @classmethod
    def load(cls, path: str | Path) -> Annotation:
        import yaml

        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        sentences = []
        for item in data["sentences"]:
            m = item["m"]
            mods = tuple(m) if isinstance(m, list) else (m,)
            act = item.get("action", [])
            acts = tuple(str(a) for a in act) if isinstance(act, list) else (str(act),)
            sentences.append(GoldSentence(item["s"], mods, acts, item.get("actor"), bool(item.get("opt"))))
        return cls(data["document"], data.get("split", "dev"), sentences)

    def match(self, text: str) -> GoldSentence | None:
        """The annotated sentence a draft's text quotes: the longest one in it (a short one such
        as "Be patient" may sit inside a longer sentence), then the one ending last."""
        t = norm(text)
        best, key = None, (-1, -1)
        for g in self.sentences:
            n = norm(g.s)
            at = t.rfind(n) if n else -1
            if at >= 0 and (len(n), at + len(n)) > key:
                best, key = g, (len(n), at + len(n))
        return best


def action_ok(draft: str, gold: str) -> bool:
    """The draft action covers >= 60% of the annotated action's words and does not run on."""
    d, g = words(draft), words(gold)
    if not g:
        return False
    covered = sum(1 for w in set(g) if w in d) / len(set(g))
    return covered >= 0.6 and len(d) <= 2 * len(g) + 4


@dataclass
class DraftJudgement:
    rule: dict[str, Any]
    gold: GoldSentence | None
    real: bool
    modality_ok: bool
    usable: bool


@dataclass
class Scores:
    document: str
    drafts: int = 0
    real: int = 0
    modality_ok: int = 0
    usable: int = 0
    rule_sentences: int = 0
    found: int = 0
    judged: list[DraftJudgement] = field(default_factory=list)
    missed: list[GoldSentence] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.real / self.drafts if self.drafts else 0.0

    @property
    def recall(self) -> float:
        return self.found / self.rule_sentences if self.rule_sentences else 0.0

    @property
    def modality(self) -> float:
        return self.modality_ok / self.real if self.real else 0.0

    @property
    def fully_usable(self) -> float:
        return self.usable / self.drafts if self.drafts else 0.0

    def add(self, other: Scores) -> None:
        for name in ("drafts", "real", "modality_ok", "usable", "rule_sentences", "found"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.judged += other.judged
        self.missed += other.missed

    def row(self) -> dict[str, Any]:
        return {"document": self.document, "drafts": self.drafts, "rule_sentences": self.rule_sentences,
                "precision": round(self.precision, 3), "recall": round(self.recall, 3),
                "modality": round(self.modality, 3), "fully_usable": round(self.fully_usable, 3)}


def judge(rule: dict[str, Any], annotation: Annotation) -> DraftJudgement:
    gold = annotation.match(rule["text"])
    if gold is None or not gold.is_rule:
        return DraftJudgement(rule, gold, False, False, False)
    mod_ok = rule["modality"] in gold.modalities
    usable = False
    if mod_ok:
        if len(gold.modalities) == 1:
            wanted = list(gold.actions)  # one rule, several acceptable readings of its action
        else:
            wanted = [a for m, a in zip(gold.modalities, gold.actions, strict=False) if m == rule["modality"]]
            wanted = wanted or list(gold.actions)
        usable = any(action_ok(rule["action"], a) for a in wanted)
    return DraftJudgement(rule, gold, True, mod_ok, usable)


def score(rules: list[dict[str, Any]], annotation: Annotation) -> Scores:
    """Figures of one drafted document (its draft rules as YAML mappings) against its annotation."""
    out = Scores(annotation.document)
    hit: set[int] = set()
    for rule in rules:
        j = judge(rule, annotation)
        out.judged.append(j)
        out.drafts += 1
        out.real += j.real
        out.modality_ok += j.modality_ok
        out.usable += j.usable
        if j.gold is not None:
            hit.add(id(j.gold))
    for g in annotation.sentences:
        if g.is_rule and not g.optional:
            out.rule_sentences += 1
            if id(g) in hit:
                out.found += 1
            else:
                out.missed.append(g)
    return out


def labelled_findings(document_path: str | Path, annotation: Annotation) -> list[tuple[Any, int]]:
    """Every finding the drafter makes in a document (before any confidence cut), each with 1
    when it is a real rule read with the right modality, else 0: data to calibrate on."""
    from rulealign.compiler.draft import draft_findings
    from rulealign.compiler.ingest import load_document

    out = []
    for _unit, f in draft_findings(load_document(document_path)):
        j = judge({"text": f.sentence, "modality": f.modality.value, "action": f.action}, annotation)
        out.append((f, int(j.real and j.modality_ok)))
    return out


def labelled_sentences(items: list[dict[str, Any]]) -> list[tuple[Any, int]]:
    """The same from single labelled sentences (``tests/data/deontic_gold.yaml``: ``s``, ``m``)."""
    from rulealign.compiler.extract import extract_findings

    out = []
    for item, found in zip(items, extract_findings([i["s"] for i in items]), strict=True):
        for k, f in enumerate(found):
            out.append((f, int(k == 0 and f.modality.value == item["m"])))
    return out
