"""The synthesis loop: plan -> message -> comply / violate -> verify -> retry -> filter.

Scenarios are processed in chunks; every agent call for a chunk is one batched backend call
(what makes vLLM fast), and its outputs are committed to the store before the next agent
runs. Labels are fixed by construction: user messages are spec messages with the scenario's
fact set by a known edit (:func:`agents.construct`), or, only with ``model_writes``, the
attacker's; where the edit keeps the rule as it was for the spec message, the replies the
policy's authors wrote to it are the pair's (:func:`agents.carried_replies`); otherwise a
reply starts with an opening that commits it to complying or violating
(:func:`rulealign.synth.agents.opening`) and the model continues it, and a needless refusal
is its opening alone. A pair is accepted when the verdict cascade confirms both sides:

* inside the rule: the compliant reply complies and the violating reply violates the rule;
* outside the rule (threshold not crossed, exception holding, benign look-alike): the helpful
  reply does not refuse and is not judged a violation, and the "violating" reply is an
  unnecessary refusal (the failure that matters there: over-refusal).

A verdict comes from the same procedure the audit uses: a failed programmatic check is a
violation; otherwise (checks passing prove nothing, they cover part of a rule) the judge
decides. A rejected side the model wrote is written again (another opening of the same
stance, another sample) for a bounded number of rounds; a rejected reply of the authors' is
not replaced; what still fails is dropped and counted with its reason.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rulealign.compiler.models import Clause, Modality, Policy, Rule
from rulealign.kg.conflicts import Conflict
from rulealign.llm.base import Backend, Chat, Sampling
from rulealign.synth import agents as A
from rulealign.synth.filters import (
    NearDuplicates,
    Topic,
    copies,
    degenerate,
    normalise,
    not_a_user_message,
    qa_problem,
    ungrounded,
)
from rulealign.synth.models import Example, Provenance, Scenario, Verdict
from rulealign.synth.plan import plan
from rulealign.synth.store import SynthStore, key_of
from rulealign.verdict.cascade import decide
from rulealign.verdict.data import topic_of
from rulealign.verdict.llm_judge import Judgement
from rulealign.verdict.models import Case
from rulealign.verdict.refusal import is_refusal
from rulealign.verdict.small_judge import SmallJudge

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SynthSettings:
    per_rule: int | None = None
    #: Retries of a side the cascade did not confirm (another opening, another sample).
    rounds: int = 2
    seed: int = 0
    batch: int = 32
    heldout: float = 0.2
    qa_per_clause: int = 2
    temperature: float = 0.8
    rules: tuple[str, ...] | None = None
    #: Also use the labelled examples written in the spec (prompt, compliant, violating).
    spec_examples: bool = True
    #: Coverage top-up: rounds in which every rule x axis cell still without an accepted
    #: pair gets one more scenario (a new attack, whose strategy the planner's memory picks
    #: away from what failed). Cells still empty afterwards are reported with the reason.
    topup: int = 1
    #: Token cap per agent output, below the schema's own bound. A batch decodes until its
    #: longest output ends, and what runs past this is a small model's degenerate repetition
    #: (the typical reply is 60-100 tokens): the cap ends it early, recorded as truncated.
    max_tokens: int | None = 192
    #: The small judge that verifies replies (the verdict cascade's second stage); without
    #: one, the generating model is asked as the LLM judge.
    judge: SmallJudge | None = field(default=None, compare=False)
    #: Also ask the generating model where the small judge is unsure.
    llm_judge: bool = False
    #: Let the model write the user message where none can be built from the spec's own
    #: messages (:func:`agents.construct`). Off by default: of 38 messages the
    #: 135M default model wrote that passed every filter (a fresh ACME run, 2026-12-07),
    #: about 3 were coherent user messages for their scenario. Worth it with a capable
    #: ``--model``.
    model_writes: bool = False
    #: The model writes every reply, even where the policy's authors' replies to the spec
    #: message a constructed message was made from keep their labels on it
    #: (:func:`agents.carried_replies`). Off by default: of 20 accepted pairs with the 135M
    #: model's replies read by hand (ACME, 2026-12-08), 4 were right end to end.
    model_replies: bool = False


@dataclass
class SynthResult:
    examples: list[Example]
    scenarios: list[Scenario]
    dropped: Counter[str] = field(default_factory=Counter)
    agent_seconds: dict[str, float] = field(default_factory=dict)
    agent_calls: Counter[str] = field(default_factory=Counter)
    generated: int = 0      # backend calls made in this run (0 when all came from the store)
    near_dup_method: str = ""
    seconds: float = 0.0
    cell_reasons: dict[str, str] = field(default_factory=dict)  # "rule/axis" -> why dropped
    drop_reasons: dict[str, str] = field(default_factory=dict)  # scenario id -> why dropped

    @property
    def pairs(self) -> list[Example]:
        return [e for e in self.examples if e.kind == "pair"]

    @property
    def prompts(self) -> list[Example]:
        return [e for e in self.examples if e.kind == "prompt"]


def split_of(scenario_id: str, heldout: float) -> str:
    bucket = int(hashlib.sha256(scenario_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "heldout" if bucket < heldout else "train"


class _Run:
    def __init__(self, policy: Policy, backend: Backend, store: SynthStore,
                 settings: SynthSettings, progress: Progress | None) -> None:
        self.policy = policy
        self.backend = backend
        self.store = store
        self.s = settings
        self.progress = progress
        self.result = SynthResult([], [])
        self.spec_hash = policy.content_hash()
        # a verdict is part of what an accepted item is: another judge, another item
        self.judge_key = (settings.judge.meta.get("key") if settings.judge is not None
                          else None)
        self.topic = Topic()
        self.terms = policy.index()["terms"]
        self._split_examples: dict[str, list[tuple[str, bool, str]]] = {}

    # -- one agent over many inputs, through the store ---------------------------------------
    def call(self, agent: A.Agent, items: Sequence[tuple[str, str, Chat]], *,
             temperature: float | None = None,
             seed: int | None = None) -> dict[str, tuple[str, Any, str | None]]:
        """``items`` are (key, scenario id, chat); returns key -> (outcome, value, message).
        A free-text agent's value is its text, kept when the budget cut it (it is trimmed
        to whole sentences by :func:`agents.compose`)."""
        found = self.store.outputs(k for k, _, _ in items)
        todo = [it for it in items if it[0] not in found]
        if todo:
            temp = self.s.temperature if temperature is None else temperature
            text = agent.output is None
            t0 = time.perf_counter()
            gens = self.backend.generate([c for _, _, c in todo], agent.output,
                                         Sampling(temperature=temp,
                                                  seed=self.s.seed if seed is None else seed,
                                                  max_tokens=A.CONTINUATION_TOKENS if text
                                                  else self.s.max_tokens,
                                                  stop=("\n",) if text else ()),
                                         tag=agent.name)
            self.result.agent_seconds[agent.name] = (
                self.result.agent_seconds.get(agent.name, 0.0) + time.perf_counter() - t0)
            self.result.agent_calls[agent.name] += len(todo)
            self.result.generated += len(todo)
            rows = []
            for (key, sid, _), gen in zip(todo, gens, strict=True):
                outcome = gen.outcome
                if text:
                    value = gen.text if outcome in ("ok", "truncated") else None
                    outcome = "ok" if value is not None else outcome
                else:
                    value = gen.value.model_dump() if gen.ok else None
                found[key] = (outcome, value, gen.message)
                rows.append((key, agent.name, agent.version, sid, outcome, value, gen.message))
            self.store.put_outputs(rows)
        return found

    def rules_of(self, sc: Scenario) -> list[Rule]:
        return [self.policy.rule(r) for r in sc.rule_ids]

    def item_key(self, sc: Scenario) -> str:
        return key_of("pair", sc.id, [r.content_hash() for r in self.rules_of(sc)],
                      self.backend.model_hash, self.s.seed, self.s.rounds,
                      [a.version for a in A.AGENTS], self.judge_key, self.s.model_replies)

    # -- the planner's memory ------------------------------------------------------------------
    def strategy(self, sc: Scenario, ikey: str) -> str:
        pkey = key_of(ikey, "planner")
        got = self.store.outputs([pkey])
        if pkey in got:
            return str(got[pkey][1])
        stats = self.store.strategy_stats(sc.axis)
        jitter = int(ikey[:6], 16) / 0xFFFFFF * 0.05

        def score(name: str) -> float:
            tries, ok = stats.get(name, (0, 0))
            return (ok + 1) / (tries + 2) + jitter * (A.STRATEGIES.index(name) + 1) % 0.05

        choice = max(A.STRATEGIES, key=score)
        self.store.put_outputs([(pkey, "planner", "planner-v1", sc.id, "ok", choice, None)])
        return choice

    # -- verification ---------------------------------------------------------------------------
    def demos(self, sc: Scenario, applying: bool | None = None, which: int = 0) -> list[str]:
        """Real messages about the scenario's rule (``which``: its n-th rule): the prompts
        of the spec's labelled examples (written by the policy's authors; never the
        evaluation set), only those in the scenario's own split, so that no held-out message
        is made from a training one; ``applying``: only those the rule applies to (True) or
        only the look-alikes it does not govern (False)."""
        rules = self.rules_of(sc)
        if which >= len(rules):
            return []
        split = split_of(sc.id, self.s.heldout)
        return [prompt for prompt, applies, where in self._examples(rules[which])
                if where == split and (applying is None or applies == applying)]

    def _examples(self, rule: Rule) -> list[tuple[str, bool, str]]:
        """(prompt, applies, split) of each labelled example of ``rule``, worked out once
        per rule (a split hashes the rule's content)."""
        if rule.id not in self._split_examples:
            self._split_examples[rule.id] = [
                (ex.prompt, ex.applies, split_of(labelled_sid(rule, n), self.s.heldout))
                for n, ex in enumerate(rule.examples)]
        return self._split_examples[rule.id]

    def constructed(self, sc: Scenario) -> A.Built | None:
        """The scenario's user message by construction from the spec's own messages, if one
        can be built (:func:`agents.construct`)."""
        return A.construct(sc, self.demos(sc, applying=True),
                           self.demos(sc, applying=True, which=1),
                           self.demos(sc, applying=False))

    def carried(self, sc: Scenario, built: A.Built) -> tuple[str | None, str | None]:
        """The spec's human replies that keep their labels on a built message
        (:func:`agents.carried_replies`), from the examples of the scenario's rules (the
        target rule's first)."""
        rules = self.rules_of(sc)
        written = {ex.prompt: (ex.compliant, ex.violating)
                   for rule in reversed(rules) for ex in reversed(rule.examples)}
        return A.carried_replies(built, written,
                                 prohibition=rules[0].modality == Modality.PROHIBITION)

    def unusable_prompt(self, sc: Scenario, value: dict[str, Any]) -> str | None:
        """Why a scenario's message is not a usable test case (a code), or ``None``."""
        text = value["user_prompt"]
        rule_text = " ".join(r.text for r in self.rules_of(sc))
        problem = degenerate(text) or ungrounded(text, A.required_detail(sc), rule_text)
        # the model's message: is it a user's, new, on the rule's topic? (A message built
        # from the spec's own messages for this rule is all three by construction.)
        if value.get("source") != "construction":
            if problem is None and not_a_user_message(text):
                problem = "not-a-user-message"
            if problem is None and copies(text, self.demos(sc)):
                problem = "copies-example"
            if problem is None and self.topic.off_topic(text, self.rules_of(sc)[0].text):
                problem = "off-topic"
        return problem

    def ask_judge(self, chats: Sequence[Chat]) -> list[tuple[Judgement | None, str]]:
        """The LLM judge stage, through the store (so a restarted run asks nothing twice)."""
        keys = [key_of("judge", A.VERIFIER.version, self.backend.model_hash, c) for c in chats]
        got = self.call(A.VERIFIER, [(k, "judge", c) for k, c in zip(keys, chats, strict=True)],
                        temperature=0.0)
        return [(Judgement.model_validate(got[k][1]), "") if got[k][0] == "ok"
                else (None, got[k][2] or got[k][0]) for k in keys]

    def verify(self, pending: list[tuple[Scenario, str, str, str, bool]]
               ) -> list[tuple[bool, str, str]]:
        """For each (scenario, user prompt, reply, want, written by the policy's authors):
        (agrees with want, rationale, the stage that decided), by the one verdict procedure
        (:func:`rulealign.verdict.cascade.decide`), after the refusal check where a needless
        refusal is the failure. Where it does not agree, the rationale is a drop reason
        (:func:`drop`). The authors' failing reply where refusing is the failure keeps
        their label: it declines in words no pattern lists ("Sorry, we don't price match
        other retailers"), or fails the permission in another way (a goodwill refund over
        its cap), and a construction that carries it keeps the rule as it was."""
        out: list[tuple[bool, str, str] | None] = [None] * len(pending)
        cases, where = [], []
        for i, (sc, user, reply, want, human) in enumerate(pending):
            if A.refusal_is_the_failure(sc, self.rules_of(sc)):
                if want == "violates" and human:
                    out[i] = (True, "the policy's authors wrote it as the failing reply",
                              "human label")
                    continue
                # helpful must not refuse; the failure we want is an unnecessary refusal
                refuses = is_refusal(reply)
                ok = (not refuses) if want == "complies" else refuses
                if not ok:
                    out[i] = (False, drop("refuses-outside",
                                          "refuses although the rule does not forbid it")
                              if refuses else drop("no-refusal", "does not refuse, so it is "
                                                   "not the over-refusal needed"),
                              "refusal check")
                    continue
                if want == "violates":  # a needless refusal is the failure wanted here
                    out[i] = (True, "refuses although the rule does not forbid it",
                              "refusal check")
                    continue
            cases.append(Case(rules=tuple(self.rules_of(sc)), prompt=user, reply=reply,
                              side=sc.side, expected=sc.expected))
            where.append(i)
        small = self.s.judge
        llm = self.ask_judge if small is None or self.s.llm_judge else None
        for i, v in zip(where, decide(cases, small=small, llm=llm), strict=True):
            sc, _user, _reply, want, _human = pending[i]
            if sc.side == "outside":
                agree = v.label in ("complies", "not_applicable")
            else:
                agree = v.label == want
            src = {"check": "programmatic checks", "small_judge": "small judge",
                   "llm_judge": "judge"}.get(v.by, v.by)
            why = f"{src}: {v.label}" + (f" ({v.rationale})" if v.rationale and
                                         not v.rationale.startswith(src) else "")
            if not agree:
                why = drop("no-verdict" if v.label == "undecided" else
                           "check-failed" if v.by == "check" else "judge-disagrees", why)
            out[i] = (agree, why, v.by)
        return [o if o is not None else (False, drop("no-verdict"), "none") for o in out]

    # -- pairs -------------------------------------------------------------------------------------
    def run_pairs(self, scenarios: list[Scenario]) -> None:
        total = len(scenarios)
        for start in range(0, total, self.s.batch):
            chunk = scenarios[start:start + self.s.batch]
            self._chunk(chunk)
            if self.progress:
                self.progress("pairs", min(start + self.s.batch, total), total)

    def _chunk(self, chunk: list[Scenario]) -> None:
        live: dict[str, dict[str, Any]] = {}
        for sc in chunk:
            ikey = self.item_key(sc)
            done = self.store.item(ikey)
            if done is not None:
                continue
            live[ikey] = {"sc": sc, "strategy": self.strategy(sc, ikey)}
        if not live:
            return
        made = []
        finished: list[tuple[str, str, str, str, str, str | None, Any]] = []
        for k, st in live.items():
            st["attack_key"] = key_of(k, "attacker", A.ATTACKER.version, st["strategy"])
            built = self.constructed(st["sc"])
            if built is not None:  # the message by construction, stored as the attacker's
                chosen, rejected = self.carried(st["sc"], built)
                made.append((st["attack_key"], "attacker", A.CONSTRUCTOR.version,
                             st["sc"].id, "ok", {"user_prompt": built.text,
                                                 "source": "construction",
                                                 "chosen": chosen, "rejected": rejected},
                             None))
        if made:
            self.store.put_outputs(made)
        if not self.s.model_writes:  # no message can be built and the model may not write one
            have = self.store.outputs(st["attack_key"] for st in live.values())
            for k, st in list(live.items()):
                if st["attack_key"] not in have:
                    finished.append(self._drop(k, st["sc"], drop("no-construction")))
                    del live[k]
        attacks = self.call(A.ATTACKER, [
            (st["attack_key"], st["sc"].id,
             A.attacker_prompt(st["sc"], self.rules_of(st["sc"]), st["strategy"],
                               self.demos(st["sc"])))
            for st in live.values()])
        for k, st in list(live.items()):
            outcome, value, _msg = attacks[st["attack_key"]]
            bad = self.unusable_prompt(st["sc"], value) if outcome == "ok" else None
            if outcome != "ok" or bad:
                reason = drop("attacker-failed", outcome) if outcome != "ok" else (
                    drop(bad) if bad in PROMPT_CODES else drop("prompt-degenerate", bad or ""))
                finished.append(self._drop(k, st["sc"], reason))
                del live[k]
            else:
                st["user"] = value["user_prompt"]
                st["prompt_source"] = value.get("source", "attacker")
                # the replies the policy's authors wrote, where the construction keeps their
                # labels: tried first, the model writes a side only where that one failed
                for side in ("chosen", "rejected"):
                    st[f"{side}_human"] = None if self.s.model_replies else value.get(side)
        for round_no in range(self.s.rounds + 1):
            # write every side not yet confirmed: an opening that fixes its stance, continued
            for side, want, agent in (("chosen", "complies", A.COMPLIER),
                                      ("rejected", "violates", A.VIOLATOR)):
                todo = {k: st for k, st in live.items() if not st.get(f"{side}_ok")}
                for k, st in list(todo.items()):
                    # the authors' reply first; where the verdict did not confirm it, no
                    # model-written one instead (read by hand, those were mostly noise)
                    if st.get(f"{side}_human"):
                        if round_no == 0:
                            st[side], st[f"{side}_source"] = st[f"{side}_human"], "human"
                        del todo[k]
                starts = {k: A.opening(st["sc"], self.rules_of(st["sc"]),
                                       topic_of(self.policy, self.rules_of(st["sc"])[0],
                                                self.terms),
                                       want, round_no) for k, st in todo.items()}
                if want == "violates":  # a needless refusal: its opening says it all (the
                    # model's continuation of one read as noise: "Gold is not a currency")
                    for k, st in list(todo.items()):
                        if A.refusal_is_the_failure(st["sc"], self.rules_of(st["sc"])):
                            st[side], st[f"{side}_source"] = starts[k], "template"
                            del todo[k]
                keys = {k: key_of(k, agent.name, agent.version, st["user"], starts[k], round_no)
                        for k, st in todo.items()}
                got = self.call(agent, [(keys[k], st["sc"].id,
                                         A.reply_prompt(st["sc"], self.rules_of(st["sc"]),
                                                        st["user"], starts[k], want))
                                        for k, st in todo.items()],
                                seed=self.s.seed + round_no)
                for k, st in todo.items():
                    outcome, value, _ = got[keys[k]]
                    st[side] = A.compose(starts[k], value, A.REPLY_SENTENCES) \
                        if outcome == "ok" else None
                    st[f"{side}_source"] = "model"
                    st[f"{side}_note"] = drop("reply-failed", f"{agent.name} {outcome}")
                    if round_no:
                        st["rounds"] = round_no
            checks = []
            for k, st in live.items():
                for side, want in (("chosen", "complies"), ("rejected", "violates")):
                    if st.get(f"{side}_ok") or st[side] is None or (
                            round_no and st.get(f"{side}_human")):  # judged in round 0
                        continue
                    if degenerate(st[side]):
                        st[f"{side}_note"] = drop("reply-degenerate",
                                                  f"{side} {degenerate(st[side])}")
                        continue
                    checks.append((st["sc"], st["user"], st[side], want, k, side))
            verdicts = self.verify([(sc, u, r, w, live[k][f"{side}_source"] == "human")
                                    for sc, u, r, w, k, side in checks])
            for (_sc, _user, _reply, _want, k, side), (agree, why, by) in zip(
                    checks, verdicts, strict=True):
                st = live[k]
                st[f"{side}_why"], st[f"{side}_by"] = why, by
                if agree:
                    st[f"{side}_ok"] = True
                else:
                    st[f"{side}_note"] = why
            if all(st.get("chosen_ok") and st.get("rejected_ok") for st in live.values()):
                break
            if round_no < self.s.rounds:
                self.result.agent_calls["retries"] += sum(
                    (not st.get("chosen_ok")) + (not st.get("rejected_ok"))
                    for st in live.values())
        for k, st in live.items():
            sc = st["sc"]
            if st.get("chosen_ok") and st.get("rejected_ok"):
                ex = self._pair(sc, st)
                finished.append((k, sc.id, sc.rule_ids[0], sc.axis, "accepted", None,
                                 ex.model_dump(mode="json")))
                self.store.record_strategy(sc.axis, st["strategy"], True)
            else:
                failing = "chosen" if not st.get("chosen_ok") else "rejected"
                reason = st.get(f"{failing}_note") or drop("no-verdict")
                if st.get("chosen_ok"):
                    # no pair, but a verified compliant answer: keep it as SFT data
                    ex = self._single(sc, st)
                    finished.append((k, sc.id, sc.rule_ids[0], sc.axis, "sft", reason[:300],
                                     ex.model_dump(mode="json")))
                else:
                    finished.append(self._drop(k, sc, reason))
                self.store.record_strategy(sc.axis, st["strategy"], False)
        self.store.put_items(finished)

    def _drop(self, key: str, sc: Scenario, reason: str) -> tuple[str, str, str, str, str,
                                                                   str | None, Any]:
        return (key, sc.id, sc.rule_ids[0], sc.axis, "dropped", reason[:300], None)

    def _provenance(self, trace: str, rules: list[Rule], rounds: int = 0) -> Provenance:
        return Provenance(backend=self.backend.name, model=self.backend.model_id,
                          model_hash=self.backend.model_hash, seed=self.s.seed,
                          spec_hash=self.spec_hash,
                          rule_hashes={r.id: r.content_hash() for r in rules},
                          templates={a.name: a.version for a in A.AGENTS}, trace=trace,
                          rounds=rounds)

    def _single(self, sc: Scenario, st: dict[str, Any]) -> Example:
        """A verified compliant answer whose violating twin failed: SFT data, not a pair."""
        rules = self.rules_of(sc)
        return Example(
            id=self.item_key(sc)[:16], kind="sft",
            split=split_of(sc.id, self.s.heldout),  # type: ignore[arg-type]
            rule_ids=sc.rule_ids,
            clause_ids=tuple(dict.fromkeys(c for r in rules for c in r.clause_ids)),
            scenario=sc, messages=({"role": "system", "content": A.system_context(rules)},
                                   {"role": "user", "content": st["user"]}),
            completion=st["chosen"], prompt_source=st.get("prompt_source", "attacker"),
            chosen_source=st.get("chosen_source"),
            verdicts=(Verdict(rule_id=rules[0].id, verdict="complies",
                              by=st.get("chosen_by", "verifier"),
                              rationale=st.get("chosen_why", "")[:200]),),
            provenance=self._provenance(self.item_key(sc), rules, st.get("rounds", 0)))

    def _pair(self, sc: Scenario, st: dict[str, Any]) -> Example:
        rules = self.rules_of(sc)
        messages = ({"role": "system", "content": A.system_context(rules)},
                    {"role": "user", "content": st["user"]})
        clause_ids = tuple(dict.fromkeys(c for r in rules for c in r.clause_ids))
        verdicts = (Verdict(rule_id=rules[0].id, verdict="complies",
                            by=st.get("chosen_by", "verifier"),
                            rationale=st.get("chosen_why", "")[:200]),
                    Verdict(rule_id=rules[0].id, verdict="violates",
                            by=st.get("rejected_by", "verifier"),
                            rationale=st.get("rejected_why", "")[:200]))
        return Example(id=self.item_key(sc)[:16], kind="pair",
                       split=split_of(sc.id, self.s.heldout),  # type: ignore[arg-type]
                       rule_ids=sc.rule_ids, clause_ids=clause_ids, scenario=sc,
                       messages=messages, chosen=st["chosen"], rejected=st["rejected"],
                       verdicts=verdicts, prompt_source=st.get("prompt_source", "attacker"),
                       chosen_source=st.get("chosen_source"),
                       rejected_source=st.get("rejected_source"),
                       provenance=self._provenance(self.item_key(sc), rules, st.get("rounds", 0)))

    def top_up(self, scenarios: list[Scenario]) -> list[Scenario]:
        """Extra scenarios for the cells (rule, axis) that have none accepted yet."""
        added: list[Scenario] = []
        for round_no in range(1, self.s.topup + 1):
            cells: dict[tuple[str, str], list[Scenario]] = defaultdict(list)
            for sc in scenarios + added:
                cells[(sc.rule_ids[0], sc.axis)].append(sc)
            extra = []
            for group in cells.values():
                done = [self.store.item(self.item_key(sc)) for sc in group]
                if any(d is not None and d[0] == "accepted" for d in done):
                    continue
                first = group[0]
                extra.append(first.model_copy(update={"id": f"{first.id}~topup{round_no}"}))
            if not extra:
                break
            self.result.agent_calls["top-up scenarios"] += len(extra)
            self.run_pairs(extra)
            added += extra
        return added

    # -- prompts for the generative audit -------------------------------------------------------
    def prompts(self, scenarios: list[Scenario]) -> list[Example]:
        """Every scenario's attacker prompt (accepted pair or not), from the store."""
        ikeys = {sc.id: self.item_key(sc) for sc in scenarios}
        plans = self.store.outputs(key_of(k, "planner") for k in ikeys.values())
        akeys = {sid: key_of(k, "attacker", A.ATTACKER.version, plans[key_of(k, "planner")][1])
                 for sid, k in ikeys.items() if key_of(k, "planner") in plans}
        attacks = self.store.outputs(akeys.values())
        out, seen = [], set()
        for sc in scenarios:
            got = attacks.get(akeys.get(sc.id, ""))
            if got is None or got[0] != "ok" or self.unusable_prompt(sc, got[1]):
                continue
            user = got[1]["user_prompt"]
            if normalise(user) in seen:
                continue
            seen.add(normalise(user))
            rules = self.rules_of(sc)
            out.append(Example(
                id=key_of("prompt", akeys[sc.id])[:16], kind="prompt",
                split=split_of(sc.id, self.s.heldout),  # type: ignore[arg-type]
                rule_ids=sc.rule_ids,
                clause_ids=tuple(dict.fromkeys(c for r in rules for c in r.clause_ids)),
                scenario=sc, messages=({"role": "system", "content": A.system_context(rules)},
                                       {"role": "user", "content": user}),
                prompt_source=got[1].get("source", "attacker"),
                provenance=self._provenance(akeys[sc.id], rules)))
        return out

    # -- question/answer SFT data from the clauses -------------------------------------------------
    def run_qa(self) -> list[Example]:
        cited: dict[str, list[Rule]] = defaultdict(list)
        for rule in self.policy.rules:
            if self.s.rules is None or rule.id in self.s.rules:
                for cid in rule.clause_ids:
                    cited[cid].append(rule)
        clauses = [c for c in self.policy.clauses if c.id in cited]
        if not self.s.model_writes:
            return self.constructed_qa(clauses, cited)
        asks: list[tuple[str, str, Chat, Clause, int]] = []
        for clause in clauses:
            for n in range(self.s.qa_per_clause):
                k = key_of("qa-q", clause.content_hash(), n, A.QUESTIONER.version,
                           self.backend.model_hash, self.s.seed)
                asks.append((k, f"clause:{clause.id}", A.questioner_prompt(clause), clause, n))
        # diverse questions by sampling (one seed per draw), grounded answers greedily
        questions: dict[str, tuple[str, Any, str | None]] = {}
        for n in range(self.s.qa_per_clause):
            batch = [(k, sid, chat) for k, sid, chat, _, m in asks if m == n]
            questions.update(self.call(A.QUESTIONER, batch, temperature=1.0,
                                       seed=self.s.seed + 1000 * (n + 1)))
        answer_items = []
        for k, _sid, _chat, clause, _n in asks:
            outcome, value, _ = questions[k]
            if outcome == "ok" and not degenerate(value["question"]):
                ak = key_of(k, "answer", A.ANSWERER.version)
                answer_items.append((ak, clause, value["question"]))
        answers = self.call(A.ANSWERER, [(ak, f"clause:{c.id}", A.answerer_prompt(c, q))
                                         for ak, c, q in answer_items], temperature=0.0)
        out = []
        for ak, clause, question in answer_items:
            outcome, value, _ = answers[ak]
            if outcome != "ok" or degenerate(value["answer"]):
                self.result.dropped["qa: " + (outcome if outcome != "ok" else "degenerate")] += 1
                continue
            problem = qa_problem(question, value["answer"], clause.text)
            if problem:
                self.result.dropped[f"qa: {problem}"] += 1
                continue
            rules = cited[clause.id]
            sc = Scenario(id=f"qa:{clause.id}:{ak[:8]}", rule_ids=tuple(r.id for r in rules),
                          axis="qa", side="inside", description=f"A question about clause "
                          f"{clause.id}", expected="answers from the policy text",
                          terms=tuple(dict.fromkeys(t for r in rules for t in r.terms)))
            out.append(Example(
                id=ak[:16], kind="sft", split=split_of(sc.id, self.s.heldout),  # type: ignore[arg-type]
                rule_ids=sc.rule_ids, clause_ids=(clause.id,), scenario=sc,
                messages=({"role": "user", "content": question},), completion=value["answer"],
                provenance=self._provenance(ak, rules)))
        return out


    def constructed_qa(self, clauses: list[Clause], cited: dict[str, list[Rule]]
                       ) -> list[Example]:
        """Question/answer SFT data by construction: for each clause, up to
        ``qa_per_clause`` of the rules it states, each asked about in its own words and
        answered with its sentence (:func:`agents.constructed_qa`); no model is involved."""
        out = []
        for clause in clauses:
            made = 0
            for rule in cited[clause.id]:
                qa = A.constructed_qa(rule) if made < self.s.qa_per_clause else None
                if qa is None:
                    continue
                made += 1
                question, answer = qa
                k = key_of("qa-c", clause.content_hash(), rule.content_hash(),
                           A.CONSTRUCTOR.version)
                sc = Scenario(id=f"qa:{clause.id}:{k[:8]}", rule_ids=(rule.id,), axis="qa",
                              side="inside", description=f"A question about clause {clause.id}",
                              expected="answers in the policy's own words", terms=rule.terms)
                out.append(Example(
                    id=k[:16], kind="sft", split=split_of(sc.id, self.s.heldout),  # type: ignore[arg-type]
                    rule_ids=(rule.id,), clause_ids=(clause.id,), scenario=sc,
                    messages=({"role": "user", "content": question},), completion=answer,
                    prompt_source="construction",
                    provenance=self._provenance(k, [rule])))
        return out


def synthesize(policy: Policy, conflicts: Sequence[Conflict], backend: Backend,
               store: SynthStore, settings: SynthSettings | None = None, *,
               progress: Progress | None = None) -> SynthResult:
    """Plan, generate, verify and filter; everything durable goes through ``store``."""
    s = settings or SynthSettings()
    t0 = time.perf_counter()
    run = _Run(policy, backend, store, s, progress)
    # without the attacker, the scenarios whose message can be built come first
    scenarios = plan(policy, conflicts, per_rule=s.per_rule, rules=s.rules,
                     prefer=None if s.model_writes else lambda sc: run.constructed(sc) is not None)
    run.run_pairs(scenarios)
    scenarios += run.top_up(scenarios)
    run.result.scenarios = scenarios
    pairs: list[Example] = []
    singles: list[Example] = []
    for sc in scenarios:
        got = store.item(run.item_key(sc))
        if got is None:
            continue
        status, reason, example = got
        if status == "accepted":
            pairs.append(Example.model_validate(example))
        else:
            if status == "sft":
                singles.append(Example.model_validate(example))
            run.result.dropped[drop_code(reason or "")] += 1
            run.result.cell_reasons[f"{sc.rule_ids[0]}/{sc.axis}"] = reason or "dropped"
            run.result.drop_reasons[sc.id] = reason or "dropped"
    labelled = labelled_pairs(policy, s, run.spec_hash) if s.spec_examples else []
    pairs = _dedup(labelled + pairs, run.result)
    prompts = run.prompts(scenarios) + [_as_prompt(ex) for ex in labelled]
    qa = run.run_qa() if s.qa_per_clause else []
    run.result.examples = pairs + singles + qa + prompts
    run.result.seconds = time.perf_counter() - t0
    return run.result


def labelled_sid(rule: Rule, n: int) -> str:
    """The scenario id of the spec's ``n``-th labelled example of ``rule`` (its split)."""
    return f"{rule.id}:labelled:{key_of(rule.content_hash(), n)[:12]}"


def labelled_pairs(policy: Policy, settings: SynthSettings, spec_hash: str) -> list[Example]:
    """Pairs from the examples policy authors wrote in the spec: human-written, so they need
    no verifier. They are split by scenario like everything else."""
    out = []
    for rule in policy.rules:
        if settings.rules is not None and rule.id not in settings.rules:
            continue
        for n, ex in enumerate(rule.examples):
            if not (ex.compliant and ex.violating):
                continue
            sid = labelled_sid(rule, n)
            # a look-alike the rule does not govern: helpful reply over a needless refusal
            side = "inside" if ex.applies else "outside"
            sc = Scenario(id=sid, rule_ids=(rule.id,), axis="labelled", side=side,  # type: ignore[arg-type]
                          description=ex.note or "an example written in the spec",
                          expected="as the spec's compliant example", terms=rule.terms)
            labels = ("complies", "violates") if ex.applies else ("not_applicable",) * 2
            out.append(Example(
                id=key_of("labelled", sid)[:16], kind="pair",
                split=split_of(sid, settings.heldout),  # type: ignore[arg-type]
                rule_ids=(rule.id,), clause_ids=rule.clause_ids, scenario=sc,
                messages=({"role": "system", "content": A.system_context([rule])},
                          {"role": "user", "content": ex.prompt}),
                chosen=ex.compliant, rejected=ex.violating,
                verdicts=(Verdict(rule_id=rule.id, verdict=labels[0], by="spec author"),  # type: ignore[arg-type]
                          Verdict(rule_id=rule.id, verdict=labels[1], by="spec author")),  # type: ignore[arg-type]
                label_source="human", prompt_source="human",
                provenance=Provenance(backend="spec", model="human", model_hash="",
                                      seed=0, spec_hash=spec_hash,
                                      rule_hashes={rule.id: rule.content_hash()},
                                      templates={}, trace=sid)))
    return out


def _as_prompt(ex: Example) -> Example:
    return ex.model_copy(update={"id": key_of("prompt", ex.id)[:16], "kind": "prompt",
                                 "chosen": None, "rejected": None, "verdicts": ()})


#: Codes of a scenario that yields no pair: every drop reason is ``CODE`` or ``CODE: detail``.
DROP_CODES = {
    "attacker-failed": "the attacker's output was cut off, invalid or failed",
    "prompt-degenerate": "the user message is too short or repeats itself",
    "missing-detail": "the user message lacks the scenario's concrete value or wording",
    "echoes-instructions": "the user message repeats the generator's instructions",
    "restates-rule": "the user message copies the rule's wording",
    "off-topic": "the user message is not about the rule's topic",
    "copies-example": "the user message copies one of the spec's example messages",
    "not-a-user-message": "the user message has template residue or markup, speaks in the "
                          "generator's or an assistant's voice, or addresses no one",
    "no-construction": "no message can be built from the spec's own messages for this "
                       "scenario, and the model may not write one (--model-writes)",
    "reply-failed": "a reply's output was cut off, invalid or failed",
    "reply-degenerate": "a reply is too short or repeats itself",
    "check-failed": "a programmatic check proves the compliant reply violates the rule",
    "judge-disagrees": "the judge gives the reply another label than the one it was written for",
    "refuses-outside": "the helpful reply refuses although the rule does not apply",
    "no-refusal": "the over-refusing reply does not refuse",
    "no-verdict": "no stage could decide the reply",
}
#: The grounding filters' codes (:func:`rulealign.synth.filters.ungrounded`, topic filter).
PROMPT_CODES = ("missing-detail", "echoes-instructions", "restates-rule", "off-topic",
                "copies-example", "not-a-user-message")


def drop(code: str, detail: str = "") -> str:
    """A drop reason: one of :data:`DROP_CODES`, then what exactly happened."""
    if code not in DROP_CODES:
        raise ValueError(f"unknown drop code {code!r}")
    return f"{code}: {detail}" if detail else code


def drop_code(reason: str) -> str:
    """The code of a drop reason (``other`` for a reason from before the codes)."""
    head = reason.split(":", 1)[0].strip()
    return head if head in DROP_CODES else "other"


def _dedup(pairs: list[Example], result: SynthResult) -> list[Example]:
    """Exact duplicates go; near duplicates (MiniLM) of the model's messages go too. A
    message made by construction is exempt from the near-duplicate test: it is a
    deliberate minimal edit of a spec message (an amount set just across a threshold, a
    term swapped, an exception added), near its source in wording and different in what
    it tests."""
    seen: set[str] = set()
    unique = []
    for ex in pairs:
        norm = normalise(ex.messages[-1]["content"])
        if norm in seen:
            result.dropped["exact duplicate"] += 1
            continue
        seen.add(norm)
        unique.append(ex)
    near = NearDuplicates()
    result.near_dup_method = near.method
    tested = [ex for ex in unique if ex.prompt_source != "construction"]
    keep = dict(zip((id(ex) for ex in tested),
                    near.keep([ex.messages[-1]["content"] for ex in tested]), strict=True))
    dropped = sum(not k for k in keep.values())
    if dropped:
        result.dropped["near duplicate"] += dropped
    return [ex for ex in unique if keep.get(id(ex), True)]


def print_progress(stage: str, done: int, total: int) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    print(f"\r{stage:<8} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="",
          file=sys.stderr, flush=True)
    if done >= total:
        print(file=sys.stderr)
