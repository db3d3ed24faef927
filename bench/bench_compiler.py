"""Compiler benchmark: load+validate a 10,000-rule spec; extract rules from a 40,000-word document;
the drafter's figures on the hand-annotated real documents in tests/data/gold; the reliability
of its confidence.

Prints tables and writes bench/results/compiler.json. Not a test: run `make bench`.
Targets on 2 cores: the 10,000-rule spec validates in under 5 s; extraction >= 5,000 words/s.
Issue 18 floors on a real document: precision >= 0.90, correct modality >= 0.90, fully usable
>= 0.70, recall of rule sentences >= 0.90, every draft passes `spec check`.

    python bench/bench_compiler.py               # speed, dev-document figures, reliability
    python bench/bench_compiler.py --held-out    # also the held-out document
    python bench/bench_compiler.py --calibrate   # recount confidence families, write confidence.json
"""

from __future__ import annotations

import json
import platform
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rulealign.compiler import confidence  # noqa: E402
from rulealign.compiler.draft import draft_findings, draft_spec  # noqa: E402
from rulealign.compiler.evaluate import (  # noqa: E402
    Annotation,
    Scores,
    labelled_findings,
    labelled_sentences,
    score,
)
from rulealign.compiler.ingest import load_document  # noqa: E402
from rulealign.compiler.loader import compile_spec  # noqa: E402

GOLD = ROOT / "tests" / "data" / "gold"

VERBS = ["promise", "share", "disclose", "accept", "offer", "issue", "collect", "delete", "approve"]
OBJECTS = ["refund", "gift", "account details", "store credit", "personal data", "discount"]


def make_spec(path: Path, n_rules: int, n_terms: int) -> None:
    rng = random.Random(7)
    lines = ["rulealign: 1", "policy: {id: bench, title: Benchmark policy}", "terms:"]
    for t in range(n_terms):
        broader = f", broader: [t{t // 10}]" if t >= 10 else ""
        lines.append(f"  - {{id: t{t}, label: term {t}, synonyms: [syn {t}]{broader}}}")
    lines.append("  - {id: amount, label: amount, unit: USD}")
    lines.append("rules:")
    for r in range(n_rules):
        mod = rng.choice(["obligation", "prohibition", "permission"])
        verb, obj = rng.choice(VERBS), rng.choice(OBJECTS)
        lines += [f"  - id: r{r}", f"    clause: 's{r // 10}.{r % 10}'",
                  f"    text: The assistant must not {verb} a {obj} above ${r % 500}.",
                  f"    modality: {mod}", f"    action: {verb} {obj}",
                  f"    conditions: [{{term: amount, op: '>', value: {r % 500}, unit: USD}}, 'the customer asks']",
                  "    exceptions: [a supervisor approved]", f"    priority: {rng.randint(0, 5)}",
                  f"    terms: [t{rng.randrange(n_terms)}, t{rng.randrange(n_terms)}]",
                  "    checks: [{not_regex: '(?i)I will refund'}]"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def make_document(path: Path, n_words: int) -> None:
    rng = random.Random(11)
    sentences = [
        "Employees must not accept gifts worth more than ${n} from suppliers.",
        "The assistant may offer a refund of up to ${n} if the order arrived damaged.",
        "Managers must forward every report to Compliance within {n} business days.",
        "Customers can return unopened items within {n} days unless the item is software.",
        "This section describes how the team handles about {n} tickets a day.",
        "Staff are not permitted to share personal data without written consent.",
        "Violations may lead to disciplinary action.",
    ]
    words, parts, section = 0, ["# Benchmark policy", ""], 0
    while words < n_words:
        section += 1
        parts += [f"## {section} Section {section}", ""]
        for _ in range(8):
            s = rng.choice(sentences).format(n=rng.randint(2, 900))
            parts += [f"- {s}"]
            words += len(s.split())
        parts.append("")
    path.write_text("\n".join(parts), encoding="utf-8")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gold_figures(held_out: bool) -> list[dict]:
    """Draft every gold document beside a copy of it, check the draft, score it."""
    rows = []
    totals = {"dev": Scores("dev documents"), "held_out": Scores("held-out documents")}
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(GOLD.glob("*.yaml")):
            ann = Annotation.load(path)
            if ann.split == "held_out" and not held_out:
                continue
            doc = Path(tmp) / ann.document
            doc.write_bytes((GOLD / ann.document).read_bytes())
            out = Path(tmp) / f"{path.stem}.draft.yaml"
            t0 = time.perf_counter()
            text, _stats = draft_spec(doc, output=out)
            dt = time.perf_counter() - t0
            out.write_text(text, encoding="utf-8")
            result = compile_spec(out)
            import yaml

            s = score(yaml.safe_load(text)["rules"], ann)
            totals[ann.split].add(s)
            rows.append({**s.row(), "split": ann.split, "spec_check": "ok" if result.ok and not result.errors
                         else f"{len(result.errors)} errors", "seconds": round(dt, 2)})
    for split, total in totals.items():
        if total.drafts:
            rows.append({**total.row(), "split": split, "spec_check": "", "seconds": ""})
    return rows


def calibration_data() -> dict[str, list]:
    import yaml

    groups: dict[str, list] = {}
    for path in sorted(GOLD.glob("*.yaml")):
        ann = Annotation.load(path)
        if ann.split == "dev":
            groups[ann.document] = labelled_findings(GOLD / ann.document, ann)
    items = yaml.safe_load((ROOT / "tests" / "data" / "deontic_gold.yaml").read_text(encoding="utf-8"))
    groups["deontic_gold.yaml"] = labelled_sentences(items)
    return groups


def reliability_table(groups: dict[str, list]) -> tuple[list[dict], dict]:
    """Each group's drafts scored with family counts taken from the other groups only."""
    scored = []
    for name, data in groups.items():
        others = [x for other, d in groups.items() if other != name for x in d]
        counts = confidence.count(others)
        scored += [(confidence.confidence_from(counts, f), y) for f, y in data]
    good = [c for c, y in scored if y]
    bad = [c for c, y in scored if not y]
    brier = sum((c - y) ** 2 for c, y in scored) / max(len(scored), 1)
    summary = {"drafts": len(scored), "correct": len(good),
               "mean_confidence_correct": round(sum(good) / max(len(good), 1), 3),
               "mean_confidence_wrong": round(sum(bad) / max(len(bad), 1), 3), "brier": round(brier, 4)}
    return confidence.reliability(scored), summary


def main() -> None:
    held_out = "--held-out" in sys.argv
    if "--calibrate" in sys.argv:
        groups = calibration_data()
        counts = confidence.count([x for d in groups.values() for x in d])
        confidence.save(counts, sorted(groups))
        print("wrote", confidence.COUNTS.relative_to(ROOT), json.dumps(counts))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "bench.yaml"
        make_spec(spec, 10_000, 2_000)
        t0 = time.perf_counter()
        result = compile_spec(spec)
        dt = time.perf_counter() - t0
        ok = result.ok and result.policy is not None and len(result.policy.rules) == 10_000
        rows.append({"task": "load+validate 10,000-rule spec", "seconds": round(dt, 3),
                     "rate": round(10_000 / dt), "unit": "rules/s", "target": "< 5 s",
                     "met": ok and dt < 5, "size_mb": round(spec.stat().st_size / 1e6, 1)})

        doc = Path(tmp) / "policy.md"
        make_document(doc, 40_000)
        t0 = time.perf_counter()
        document = load_document(doc)
        findings = [f for _u, f in draft_findings(document)]
        dt = time.perf_counter() - t0
        n_words = len(doc.read_text().split())
        rows.append({"task": f"extract rules from a {n_words:,}-word document", "seconds": round(dt, 3),
                     "rate": round(n_words / dt), "unit": "words/s", "target": ">= 5,000 words/s",
                     "met": n_words / dt >= 5000, "findings": len(findings)})
    peak = round(peak_mb())
    print(f"{'task':48} {'seconds':>8} {'rate':>10} {'unit':8} {'target':>16}  met")
    for r in rows:
        print(f"{r['task']:48} {r['seconds']:>8} {r['rate']:>10,} {r['unit']:8} {r['target']:>16}  {r['met']}")
    print(f"peak memory (max RSS): {peak} MB")

    gold = gold_figures(held_out)
    print("\nreal policy documents (tests/data/gold), drafts at the default confidence cut 0.5:")
    print(f"{'document':34} {'split':8} {'drafts':>6} {'rules':>5} {'prec':>5} {'recall':>6} {'modal':>5} "
          f"{'usable':>6}  spec check")
    for r in gold:
        print(f"{r['document']:34} {r['split']:8} {r['drafts']:>6} {r['rule_sentences']:>5} {r['precision']:>5} "
              f"{r['recall']:>6} {r['modality']:>5} {r['fully_usable']:>6}  {r['spec_check']}")
    table, summary = reliability_table(calibration_data())
    print("\nconfidence reliability (each document scored with counts from the others):")
    print(f"{'confidence bin':16} {'drafts':>6} {'mean conf':>9} {'share correct':>13}")
    for r in table:
        print(f"{r['bin']:16} {r['drafts']:>6} {r['mean_confidence']:>9} {r['share_correct']:>13}")
    print(f"mean confidence: correct drafts {summary['mean_confidence_correct']}, wrong drafts "
          f"{summary['mean_confidence_wrong']} ({summary['drafts'] - summary['correct']} wrong of "
          f"{summary['drafts']}); Brier score {summary['brier']}")
    out = {"machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                       "cores": __import__("os").cpu_count()},
           "date": time.strftime("%Y-%m-%d"), "rows": rows, "peak_rss_mb": peak, "gold": gold,
           "reliability": table, "reliability_summary": summary}
    if held_out:
        scored = []
        for path in sorted(GOLD.glob("*.yaml")):
            ann = Annotation.load(path)
            if ann.split == "held_out":
                scored += [(confidence.calibrated_confidence(f), y)
                           for f, y in labelled_findings(GOLD / ann.document, ann)]
        print("\nheld-out documents, confidence from the shipped (development) counts:")
        for r in confidence.reliability(scored):
            print(f"{r['bin']:16} {r['drafts']:>6} {r['mean_confidence']:>9} {r['share_correct']:>13}")
        out["held_out_reliability"] = confidence.reliability(scored)
    dest = ROOT / "bench" / "results"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "compiler.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
