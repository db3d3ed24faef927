"""Compiler benchmark: load+validate a 10,000-rule spec; extract rules from a 40,000-word document.

Prints a table and writes bench/results/compiler.json. Not a test: run `make bench`.
Targets on 2 cores: the 10,000-rule spec validates in under 5 s; extraction >= 5,000 words/s.
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

from rulealign.compiler.extract import extract_findings  # noqa: E402
from rulealign.compiler.ingest import load_document  # noqa: E402
from rulealign.compiler.loader import compile_spec  # noqa: E402

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


def main() -> None:
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
        findings = extract_findings([c.text for c in document.clauses])
        dt = time.perf_counter() - t0
        n_words = len(doc.read_text().split())
        rows.append({"task": f"extract rules from a {n_words:,}-word document", "seconds": round(dt, 3),
                     "rate": round(n_words / dt), "unit": "words/s", "target": ">= 5,000 words/s",
                     "met": n_words / dt >= 5000, "findings": sum(len(f) for f in findings)})
    peak = round(peak_mb())
    print(f"{'task':48} {'seconds':>8} {'rate':>10} {'unit':8} {'target':>16}  met")
    for r in rows:
        print(f"{r['task']:48} {r['seconds']:>8} {r['rate']:>10,} {r['unit']:8} {r['target']:>16}  {r['met']}")
    print(f"peak memory (max RSS): {peak} MB")
    out = {"machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                       "cores": __import__("os").cpu_count()},
           "date": time.strftime("%Y-%m-%d"), "rows": rows, "peak_rss_mb": peak}
    dest = ROOT / "bench" / "results"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "compiler.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
