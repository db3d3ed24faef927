"""Markdown and self-contained HTML renderings of an :class:`AuditReport`.

The HTML file carries everything inline (styles, SVG plots, a few lines of script): it
opens from disk, in a mail attachment or a CI artifact, with no network. Plots: per-rule
compliance before and after with 95% intervals, a clause heatmap, the coverage matrix
(rules x boundary axes) and the conflict graph. Every failing rule links to its clause's
text and source line.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from rulealign.audit.report import AuditReport, Change, ClauseResult, Rate, RuleResult, Side

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def rate_text(r: Rate | None) -> str:
    if r is None or r.n == 0:
        return "–"
    return f"{r.rate:.0%} ({r.k}/{r.n}, {r.ci[0]:.0%}–{r.ci[1]:.0%})"


#: The paired before/after figures, in the order the report leads with them.
CHANGE_NAMES = {"preference": "prefers the compliant reply (likelihood, reply pairs)",
                "compliance": "compliance of its own answers (verdicts)",
                "over_refusal": "over-refusal (refusing where it should help)"}


def delta_text(c: Change | None) -> str:
    """One cell: ``52% → 64% (+12 points, +5 to +19) better``; ``–`` without paired data."""
    if c is None or c.n == 0 or c.diff is None:
        return "–"
    return (f"{pct(c.before)} → {pct(c.after)} ({c.diff * 100:+.0f} points, "
            f"{c.ci[0] * 100:+.0f} to {c.ci[1] * 100:+.0f}; n={c.n}) {c.reading}")


def basis(report: AuditReport, key: str) -> str:
    """What a paired figure rests on, so that each is read with its own evidence."""
    if key == "preference":
        return "log-probabilities of human-written replies: no judge involved"
    if key == "over_refusal":
        return "the refusal detector on answers to prompts outside their rule"
    cal = report.calibration
    if cal is None or not cal.n:
        return "checks and an uncalibrated judge"
    return (f"checks and the judge: {cal.correct}/{cal.n} human labels agreed "
            f"({pct(cal.accuracy)}; chance {pct(cal.base_rate)})")


def change_sentence(report: AuditReport) -> str:
    """The report's lead in plain words."""
    parts = []
    for key, name in CHANGE_NAMES.items():
        c = report.changes.get(key)
        if c is None or c.n == 0:
            continue
        parts.append(f"{name.split(' (')[0]}: {c.words()}")
    return "; ".join(parts)


def _latest(r: RuleResult) -> Side:
    return r.after or r.before


def failing_rules(report: AuditReport) -> list[RuleResult]:
    """Rules with at least one violation in the latest model's answers, worst first."""
    out = [r for r in report.rules if _latest(r).compliance.n and
           _latest(r).compliance.k < _latest(r).compliance.n]
    return sorted(out, key=lambda r: (_latest(r).compliance.rate or 0.0, r.rule_id))


# -- Markdown ---------------------------------------------------------------------------------

def markdown(report: AuditReport, *, max_failures: int = 15) -> str:
    """The report for a pull-request comment. Every text that comes from the spec, the
    report file or a model's answers is escaped (:func:`_md`, :func:`_code`): an answer's HTML
    or Markdown shows as text, it never becomes markup."""
    p = report.policy
    lines = [f"## rulealign audit: {_md(p['title'])}", ""]
    models = " → ".join(
        f"**{_md(m.label)}** {_code(m.model)}" + (f" + adapter {_code(m.adapter)}" if m.adapter
                                                 else "")
        for m in report.models.values())
    lines += [f"Policy {_code(p['id'])} {_md(p.get('version') or '')} (spec "
              f"{_md(p['spec_hash'][:12])}), {p['rules']} rules in {p['clauses']} clauses. "
              f"Models: {models}.", ""]
    head = ["", "answers", "compliance (95% CI)", "over-refusal", "preference accuracy"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lab, o in report.overall.items():
        pref = o.get("preference")
        lines.append(f"| {_md(lab)} | {o['answers']} | {rate_text(Rate.model_validate(o['compliance']))} | "
                     f"{rate_text(Rate.model_validate(o['over_refusal']))} | "
                     f"{pct(pref['accuracy']) + ' of ' + str(pref['n']) if pref else '–'} |")
    lines.append("")
    if report.changes:
        lines += ["### What training changed", "",
                  "Paired: the same held-out items measured with the base and the aligned "
                  "model; the interval is a 95% bootstrap interval of the difference. "
                  "\"better\" or \"worse\" only where the interval excludes zero.", "",
                  "| measure | before | after | change (95% CI) | paired items | reading | "
                  "rests on |", "|---|---|---|---|---|---|---|"]
        for key, name in CHANGE_NAMES.items():
            ch = report.changes.get(key)
            if ch is None:
                continue
            lines.append(
                f"| {_md(name)} | {pct(ch.before)} | {pct(ch.after)} | "
                + (f"{ch.diff * 100:+.0f} points ({ch.ci[0] * 100:+.0f} to "
                   f"{ch.ci[1] * 100:+.0f})" if ch.diff is not None else "–")
                + f" | {ch.n} | {_md(ch.reading)} | {_md(basis(report, key))} |")
        lines.append("")
    if report.buckets:
        lines.append("Before → after, per answer: " + ", ".join(
            f"{_md(k)} {v}" for k, v in report.buckets.items()) + ".")
        lines.append("")
    for lab, o in report.overall.items():
        lines.append(f"{lab}: {o['answers'] - o['unjudged']} of {o['answers']} answers have a "
                     f"verdict; {o['unjudged']} have none (undecided, or not applicable to a "
                     "prompt inside the rule) and are not counted as compliant.")
    lines.append("")
    for cal in (report.calibration, report.text_agreement):
        if cal is None:
            continue
        lines.append(_md(cal.headline()) + ("" if not cal.n else
                     " Its verdicts count." if cal.trusted else
                     " **Its verdicts are reported as undecided: they are not evidence.**"))
        lines.append("")
    if report.gate is not None:
        g = report.gate
        lines.append(f"**Gate: {'passed' if g.passed else 'FAILED'}** — clauses below "
                     f"{g.fail_under:.0%}: {_md(', '.join(g.failing)) or 'none'}"
                     + (f"; untested: {_md(', '.join(g.untested))}" if g.untested else "") + ".")
        lines.append("")
    paired = bool(report.changes)
    lines += ["### Per clause", "",
              "| clause | rules | held-out items | before | after | lowest rule | "
              + ("prefers compliant: change | compliance: change | " if paired else "")
              + "status |", "|---|---|---|---|---|---|" + ("---|---|" if paired else "") + "---|"]
    for c in report.clauses:
        if not c.rules:
            continue
        latest = c.after or c.before
        low = (f"{_md(c.after.minimum_rule if c.after else c.before.minimum_rule)} "
               f"{pct(latest.minimum)}") if latest.minimum is not None else "–"
        lines.append(f"| {_code(c.clause_id)} | {len(c.rules)} | {c.items} | "
                     f"{rate_text(c.before.pooled)} | "
                     f"{rate_text(c.after.pooled) if c.after else '–'} | {low} | "
                     + (f"{_md(delta_text(c.changes.get('preference')))} | "
                        f"{_md(delta_text(c.changes.get('compliance')))} | " if paired else "")
                     + f"{_md(c.status)} |")
    fails = failing_rules(report)
    if fails:
        lines += ["", f"### Failing rules ({len(fails)})", ""]
        for r in fails[:max_failures]:
            s = _latest(r)
            clause = ", ".join(r.clause_ids)
            lines.append(f"- **{_md(r.rule_id)}** ({_md(r.modality)}, {_md(r.severity)}) — "
                         f"{rate_text(s.compliance)}; clause {_code(clause)}, {_code(r.source)}")
            lines.append(f"  > {_md(_clip(r.text, 2000))}")
            if s.failures:
                f = s.failures[0]
                lines.append(f"  - e.g. answer: “{_md(_clip(f.response, 160))}” — {_md(f.by)}: "
                             f"{_md(_clip(f.rationale, 120))}")
        if len(fails) > max_failures:
            lines.append(f"- … and {len(fails) - max_failures} more (see the HTML report)")
    cov = report.coverage
    if cov:
        lines += ["", f"Coverage: {cov.get('rules_with_pairs', 0)}/{cov.get('rules', 0)} rules "
                  f"have accepted pairs; {len(cov.get('empty_cells', []))} planned cells empty; "
                  f"conflicts covered {sum(cov.get('conflicts', {}).values())}/"
                  f"{len(cov.get('conflicts', {}))}."]
    return "\n".join(lines) + "\n"


#: Characters that make inline Markdown (CommonMark and GitHub's extensions: emphasis, code,
#: links and images, tables, strikethrough, math, autolinks, mentions) wherever they stand.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|~:@$])")
#: What makes a block (a list, heading, quote, rule) at the start of a line.
_MD_BLOCK = re.compile(r"^(\s*)([-+=>]|\d+(?=[.)]))")


def _md(text: object) -> str:
    """``text`` as literal Markdown text on one line: HTML escaped (so no tag, comment or
    entity is live), Markdown punctuation backslash-escaped (no link, image, emphasis,
    heading, table cell, mention or autolink), a leading list or quote marker escaped, line
    breaks and control characters made spaces."""
    flat = " ".join(_CONTROL.sub(" ", str(text)).split())
    escaped = _MD_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))
    return _MD_BLOCK.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped, count=1)


def _code(text: object) -> str:
    """``text`` as an inline code span: a fence longer than any run of backticks inside it,
    on one line, with ``|`` escaped so that a table cell stays one cell."""
    flat = " ".join(_CONTROL.sub(" ", str(text)).split()).replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


# -- HTML -------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d232b;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid
#dde1e6;padding-bottom:4px}
.muted{color:#5b6675}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:10px 14px;min-width:170px}
.card b{display:block;font-size:20px}.pass{color:#17803d}.fail{color:#b42318}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}
th,td{border:1px solid #e3e6ea;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#eef1f4}td.num{text-align:right;white-space:nowrap}
.badge{border-radius:9px;padding:0 7px;font-size:12px;white-space:nowrap}
.fresh{background:#dcfae6}.reused{background:#e0eaff}.stale{background:#fef0c7}
.untested{background:#eef1f4}
blockquote{margin:6px 0;padding:4px 10px;border-left:3px solid #c4cbd4;background:#fff}
.failure{background:#fff;border:1px solid #e3e6ea;border-radius:6px;padding:8px 12px;margin:8px 0}
.failure :target,.clause:target{outline:2px solid #f79009}
svg text{font:11px system-ui,sans-serif;fill:#1d232b}
code{background:#eef1f4;padding:0 3px;border-radius:3px}
"""

_JS = """
(function(){var errs=[];window.addEventListener('error',function(e){errs.push(String(e.message));
document.documentElement.dataset.errors=errs.join(' | ');});
document.addEventListener('DOMContentLoaded',function(){
var box=document.getElementById('only-failing');if(box){box.addEventListener('change',function(){
document.querySelectorAll('tr[data-ok]').forEach(function(tr){
tr.style.display=(box.checked&&tr.dataset.ok==='1')?'none':'';});});}
var n=document.querySelectorAll('svg.plot').length;
document.documentElement.dataset.rendered=errs.length?'errors':'ok';
document.documentElement.dataset.plots=String(n);});})();
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _colour(rate: float | None) -> str:
    if rate is None:
        return "#eef1f4"
    # red (0) -> amber (0.5) -> green (1)
    hue = 120 * max(0.0, min(1.0, rate))
    return f"hsl({hue:.0f},65%,{78 - 10 * rate:.0f}%)"


def _rule_plot(report: AuditReport) -> str:
    rows = sorted(report.rules, key=lambda r: ((_latest(r).compliance.rate
                                                if _latest(r).compliance.n else 2), r.rule_id))
    rows = [r for r in rows if r.before.compliance.n or (r.after and r.after.compliance.n)]
    if not rows:
        return "<p class=muted>No rule has judged answers.</p>"
    left, width, row_h = 210, 520, 18
    height = 30 + row_h * len(rows)
    parts = [f'<svg class="plot" id="plot-rules" width="{left + width + 80}" height="{height}" '
             f'role="img" aria-label="compliance per rule before and after">']
    for x in (0, 0.25, 0.5, 0.75, 1):
        px = left + width * x
        parts.append(f'<line x1="{px}" y1="14" x2="{px}" y2="{height - 4}" stroke="#e3e6ea"/>'
                     f'<text x="{px}" y="10" text-anchor="middle">{x:.0%}</text>')
    for i, r in enumerate(rows):
        y = 22 + i * row_h
        parts.append(f'<a href="#rule-{_e(r.rule_id)}"><text x="{left - 6}" y="{y + 9}" '
                     f'text-anchor="end">{_e(r.rule_id)}</text></a>')
        for side, colour, dy in ((r.before, "#98a2b3", 2), (r.after, "#2e6be6", 9)):
            if side is None or not side.compliance.n:
                continue
            c = side.compliance
            w = width * (c.rate or 0.0)
            parts.append(f'<rect x="{left}" y="{y + dy}" width="{w:.1f}" height="6" '
                         f'fill="{colour}"><title>{_e(rate_text(c))}</title></rect>')
            parts.append(f'<line x1="{left + width * c.ci[0]:.1f}" y1="{y + dy + 3}" '
                         f'x2="{left + width * c.ci[1]:.1f}" y2="{y + dy + 3}" '
                         f'stroke="#1d232b" stroke-width="1"/>')
        if r.delta is not None:
            parts.append(f'<text x="{left + width + 8}" y="{y + 10}">'
                         f'{r.delta:+.0%}</text>')
    parts.append("</svg>")
    legend = ('<p class=muted><span style="color:#98a2b3">■</span> base model '
              + ('&nbsp; <span style="color:#2e6be6">■</span> aligned model '
                 if "after" in report.models else "")
              + '&nbsp; lines: 95% Wilson intervals; right: change in compliance.</p>')
    return "".join(parts) + legend


class _Cell(NamedTuple):
    fill: str
    tip: str  # hover text
    text: str = ""  # printed in the cell
    light: bool = False  # white text on a dark fill


def _grid(plot_id: str, label: str, columns: Sequence[str], rows: Sequence[tuple[str, str | None]],
          cell: Callable[[int, int], _Cell], *, left: int, cw: int, rh: int) -> str:
    """An SVG table of coloured cells: column heads, row labels (linked when given an
    anchor), and one rect per cell with its hover text (the heatmap and the coverage matrix)."""
    top = 22
    parts = [f'<svg class="plot" id="{plot_id}" width="{left + cw * len(columns) + 10}" '
             f'height="{top + 12 + rh * len(rows)}" role="img" aria-label="{label}">']
    for j, name in enumerate(columns):
        parts.append(f'<text x="{left + cw * j + cw / 2}" y="14" text-anchor="middle">'
                     f'{_e(name)}</text>')
    for i, (row_label, anchor) in enumerate(rows):
        y = top + i * rh
        text = f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{_e(row_label)}</text>'
        parts.append(f'<a href="#{_e(anchor)}">{text}</a>' if anchor else text)
        for j in range(len(columns)):
            c = cell(i, j)
            parts.append(f'<rect x="{left + cw * j + 1}" y="{y}" width="{cw - 2}" '
                         f'height="{rh - 2}" fill="{c.fill}"><title>{_e(c.tip)}</title></rect>')
            if c.text:
                style = ' style="fill:#fff"' if c.light else ""
                parts.append(f'<text x="{left + cw * j + cw / 2}" y="{y + 12}" '
                             f'text-anchor="middle"{style}>{_e(c.text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _clause_heatmap(report: AuditReport) -> str:
    clauses = [c for c in report.clauses if c.rules]
    cols: list[tuple[str, Callable[[ClauseResult], float | None]]] = [
        ("before", lambda c: c.before.pooled.rate if c.before.pooled.n else None),
        ("lowest rule before", lambda c: c.before.minimum)]
    if "after" in report.models:
        cols += [("after", lambda c: c.after.pooled.rate if c.after and c.after.pooled.n
                  else None),
                 ("lowest rule after", lambda c: c.after.minimum if c.after else None)]

    def cell(i: int, j: int) -> _Cell:
        v = cols[j][1](clauses[i])
        return _Cell(_colour(v), f"{clauses[i].clause_id}: {pct(v)}", pct(v))

    return _grid("plot-clauses", "clause heatmap", [name for name, _ in cols],
                 [(c.clause_id, f"clause-{c.clause_id}") for c in clauses], cell,
                 left=170, cw=110, rh=18)


def _coverage_matrix(report: AuditReport) -> str:
    cov = report.coverage
    if not cov or not cov.get("matrix"):
        return "<p class=muted>No coverage data (the audit was not given a synth run).</p>"
    axes = cov.get("axes") or []
    matrix = sorted(cov["matrix"].items())
    empty = {(e["rule"], e["axis"]): e["reason"] for e in cov.get("empty_cells", [])}

    def cell(i: int, j: int) -> _Cell:
        (rule, row), axis = matrix[i], axes[j]
        n = row.get(axis, 0)
        why = empty.get((rule, axis))
        fill = "#2e6be6" if n else ("#fda29b" if why else "#f2f4f7")
        tip = f"{n} accepted" if n else (why or "not planned for this rule")
        return _Cell(fill, f"{rule} / {axis}: {tip}", str(n) if n else "", light=True)

    legend = ('<p class=muted><span style="color:#2e6be6">■</span> accepted pairs &nbsp;'
              '<span style="color:#fda29b">■</span> planned, none accepted (hover for why) '
              '&nbsp;<span style="color:#d0d5dd">■</span> not planned for this rule</p>')
    below = cov.get("terms_below_k") or []
    extra = (f"<p>Terms used by rules but seen fewer than {_e(cov.get('k', 1))} times in the "
             f"data: {_e(', '.join(below)) if below else 'none'}.</p>")
    return _grid("plot-coverage", "coverage matrix", [a.replace("_", " ") for a in axes],
                 [(rule, None) for rule, _ in matrix], cell, left=210, cw=78, rh=16) + legend + extra


def _label_place(x: float, y: float, width: float, near: list[tuple[float, float]],
                 plot_width: float) -> tuple[float, float, str]:
    """Where a node's label goes (x, y, text-anchor attribute): away from its neighbours
    ``near``, else to the other side, else above the node; a side is taken only where the
    label (``width`` px) stays on the plot and no neighbour lies under it."""

    def clear(left: bool) -> bool:
        lo, hi = (x - width, x) if left else (x, x + width)
        return lo >= 0 and hi <= plot_width and not any(lo <= nx <= hi and abs(ny - y) < 14 for nx, ny in near)

    away_left = x < sum(nx for nx, _ in near) / max(len(near), 1)
    for left in (away_left, not away_left):
        if clear(left):
            return (x - 8, y + 4, ' text-anchor="end"') if left else (x + 8, y + 4, "")
    return min(max(x, width / 2), plot_width - width / 2), y - 10, ' text-anchor="middle"'


def _conflict_graph(report: AuditReport) -> str:
    conflicts = list(report.conflicts)
    if not conflicts:
        return "<p class=muted>No conflicts between rules.</p>"
    import networkx as nx

    g = nx.Graph()
    for c in conflicts:
        a, b = c["rules"][0], c["rules"][-1]
        g.add_edge(a, b, conflict=c)
    pos = nx.spring_layout(g, seed=0, k=1.6 / math.sqrt(max(g.number_of_nodes(), 1)))
    w, h, pad = 760, 420, 70
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]

    def sx(x: float) -> float:
        return pad + (x - min(xs)) / ((max(xs) - min(xs)) or 1) * (w - 2 * pad)

    def sy(y: float) -> float:
        return pad / 2 + (y - min(ys)) / ((max(ys) - min(ys)) or 1) * (h - pad)

    parts = [f'<svg class="plot" id="plot-conflicts" width="{w}" height="{h}" role="img" '
             f'aria-label="conflict graph">']
    for a, b, data in g.edges(data=True):
        c = data["conflict"]
        unresolved = c.get("resolution") in (None, "unresolved")
        colour = "#d92d20" if unresolved else "#98a2b3"
        parts.append(f'<line x1="{sx(pos[a][0]):.1f}" y1="{sy(pos[a][1]):.1f}" '
                     f'x2="{sx(pos[b][0]):.1f}" y2="{sy(pos[b][1]):.1f}" stroke="{colour}" '
                     f'stroke-width="{3 if unresolved else 2}"><title>{_e(c["kind"])}: '
                     f'{_e(c.get("explanation", ""))}</title></line>')
    for node in g.nodes:
        x, y = sx(pos[node][0]), sy(pos[node][1])
        near = [(sx(pos[n][0]), sy(pos[n][1])) for n in g[node]]
        tx, ty, anchor = _label_place(x, y, 6.5 * len(node) + 8, near, w)
        label = f'<text x="{tx:.1f}" y="{ty:.1f}"{anchor}>{_e(node)}</text>'
        parts.append(f'<a href="#rule-{_e(node)}"><circle cx="{x:.1f}" cy="{y:.1f}" r="6" '
                     f'fill="#2e6be6"/>{label}</a>')
    parts.append("</svg>")
    rows = "".join(
        f"<tr><td>{_e(c['kind'])}</td><td>{_e(' vs '.join(c['rules']))}</td>"
        f"<td>{_e(c.get('resolution'))}{' → ' + _e(c['winner']) if c.get('winner') else ''}"
        f"</td><td>{_e(c.get('explanation', ''))}</td></tr>" for c in conflicts)
    return ("".join(parts) + '<p class=muted><span style="color:#d92d20">━</span> unresolved '
            '&nbsp;<span style="color:#98a2b3">━</span> resolved (exception, override, authority, '
            'priority or specificity) or a repetition</p><table><tr><th>kind</th><th>rules</th><th>resolution'
            f'</th><th>explanation</th></tr>{rows}</table>')


def _reading_cls(c: Change | None) -> str:
    if c is None or c.reading not in ("better", "worse"):
        return ""
    return "pass" if c.reading == "better" else "fail"


def _card(title: str, value: str, sub: str = "", cls: str = "") -> str:
    return (f'<div class="card"><span class=muted>{_e(title)}</span><b class="{cls}">'
            f'{_e(value)}</b><span class=muted>{_e(sub)}</span></div>')


def _status(c: ClauseResult) -> str:
    return (f'<span class="badge {_e(c.status)}" title="{_e(c.status_reason)}">'
            f'{_e(c.status)}</span>')


def html_report(report: AuditReport) -> str:
    p = report.policy
    cards = []
    for lab, o in report.overall.items():
        comp = Rate.model_validate(o["compliance"])
        cards.append(_card(f"compliance, {lab}", pct(comp.rate),
                           f"{comp.k}/{comp.n}, 95% CI {pct(comp.ci[0])}–{pct(comp.ci[1])}"))
    for lab, o in report.overall.items():
        ref = Rate.model_validate(o["over_refusal"])
        cards.append(_card(f"over-refusal, {lab}", pct(ref.rate), f"{ref.k}/{ref.n} refused"))
    for lab, o in report.overall.items():
        pref = o.get("preference")
        if pref:
            cards.append(_card(f"prefers compliant, {lab}", pct(pref["accuracy"]),
                               f"of {pref['n']} held-out pairs"))
    if report.calibration is not None:
        cal = report.calibration
        cards.append(_card("judge agreement", pct(cal.accuracy) if cal.n else "uncalibrated",
                           f"{cal.correct}/{cal.n} human labels, chance "
                           f"{pct(cal.base_rate)}" if cal.n else "no human labels",
                           "" if not cal.n else "pass" if cal.trusted else "fail"))
    if report.gate is not None:
        g = report.gate
        cards.append(_card(f"gate ≥ {g.fail_under:.0%}", "passed" if g.passed else "failed",
                           f"{len(g.failing)} clause(s) below", "pass" if g.passed else "fail"))
    models = "".join(
        f"<li><b>{_e(m.label)}</b>: <code>{_e(m.model)}</code> ({_e(m.backend)}, "
        f"{_e(m.model_hash[:12])})" + (f" + adapter <code>{_e(m.adapter)}</code> "
                                         f"({_e((m.adapter_hash or '')[:12])})"
                                         if m.adapter else "") + "</li>"
        for m in report.models.values())
    buckets = ""
    if report.buckets:
        buckets = ("<p>Per answer, base → aligned: " + ", ".join(
            f"<b>{_e(k)}</b> {_e(v)}" for k, v in report.buckets.items()) + ".</p>")
    changed = ""
    if report.changes:
        head = "".join(
            f"<tr><td>{_e(name)}</td><td class=num>{_e(pct(ch.before))}</td><td class=num>"
            f"{_e(pct(ch.after))}</td><td class=num>"
            + (_e(f"{ch.diff * 100:+.0f} points ({ch.ci[0] * 100:+.0f} to "
                  f"{ch.ci[1] * 100:+.0f})") if ch.diff is not None else "–")
            + f"</td><td class=num>{_e(ch.n)}</td><td class='{_reading_cls(ch)}'>"
            f"{_e(ch.reading)}</td><td class=muted>{_e(basis(report, key))}</td></tr>"
            for key, name in CHANGE_NAMES.items() if (ch := report.changes.get(key)))
        per_rule = "".join(
            f'<tr><td><a href="#rule-{_e(r.rule_id)}"><code>{_e(r.rule_id)}</code></a></td>'
            + "".join(f"<td class='{_reading_cls(r.changes.get(k))}'>"
                      f"{_e(delta_text(r.changes.get(k)))}</td>" for k in CHANGE_NAMES)
            + "</tr>" for r in sorted(report.rules, key=lambda r: r.rule_id) if r.changes)
        changed = (
            "<h2>What training changed</h2><p>Each figure is paired: the same held-out items "
            "(the spec's human-written evaluation set and the synthesizer's held-out prompts) "
            "measured with the base and with the aligned model. The interval is a 95% "
            "bootstrap interval of the difference; a change reads <b>better</b> or "
            "<b>worse</b> only where it excludes zero.</p><table><tr><th>measure</th>"
            "<th>before</th><th>after</th><th>change (95% CI)</th><th>paired items</th>"
            f"<th>reading</th><th>rests on</th></tr>{head}</table><details><summary>per rule</summary>"
            "<table><tr><th>rule</th>" + "".join(f"<th>{_e(n)}</th>"
                                                 for n in CHANGE_NAMES.values())
            + f"</tr>{per_rule}</table></details>")
    # the clause table
    crow = []
    for c in report.clauses:
        latest = c.after or c.before
        ok = "1" if latest.pooled.n and latest.pooled.k == latest.pooled.n else "0"
        crow.append(
            f'<tr data-ok="{ok}" id="clause-{_e(c.clause_id)}" class="clause"><td>'
            f'<code>{_e(c.clause_id)}</code><br><span class=muted>{_e(c.document)}:{_e(c.line)}'
            f'</span></td><td>{_e(c.text)}</td><td>{", ".join(_e(r) for r in c.rules) or "–"}'
            f'</td><td class=num>{_e(c.items)}</td>'
            f'<td class=num>{_e(rate_text(c.before.pooled))}</td><td class=num>'
            f'{_e(rate_text(c.after.pooled)) if c.after else "–"}</td>'
            + (f"<td class='{_reading_cls(c.changes.get('preference'))}'>"
               f"{_e(delta_text(c.changes.get('preference')))}</td>" if report.changes else "")
            + f'<td>{_status(c)}</td></tr>')
    # the rule table
    rrow = []
    for r in sorted(report.rules, key=lambda r: r.rule_id):
        s = _latest(r)
        ok = "1" if not s.compliance.n or s.compliance.k == s.compliance.n else "0"
        rule_pref = s.preference
        rrow.append(
            f'<tr data-ok="{ok}" id="rule-{_e(r.rule_id)}"><td><code>{_e(r.rule_id)}</code>'
            f'<br><span class=muted>{_e(r.modality)}, {_e(r.severity)}</span></td>'
            f'<td>{_e(r.text)}<br><span class=muted>clause '
            + ", ".join(f'<a href="#clause-{_e(c)}">{_e(c)}</a>' for c in r.clause_ids)
            + f' · {_e(r.source)}</span></td><td class=num>{_e(rate_text(r.before.compliance))}'
            f'</td><td class=num>{_e(rate_text(r.after.compliance)) if r.after else "–"}</td>'
            f'<td class=num>{_e(rate_text(s.over_refusal))}</td><td class=num>'
            f'{_e(pct(rule_pref.accuracy) + f" of {rule_pref.n}") if rule_pref else "–"}'
            '</td></tr>')
    # failing rules, with their clause and examples
    fails = []
    clause_of = {c.clause_id: c for c in report.clauses}
    for r in failing_rules(report):
        s = _latest(r)
        quotes = "".join(
            f'<blockquote><b>{_e(clause_of[c].document)}:{_e(clause_of[c].line)}</b> '
            f'<a href="#clause-{_e(c)}">{_e(c)}</a>: {_e(clause_of[c].text)}</blockquote>'
            for c in r.clause_ids if c in clause_of)
        examples = "".join(
            f"<p><b>User:</b> {_e(_clip(f.prompt, 300))}<br><b>Answer:</b> "
            f"{_e(_clip(f.response, 400))}<br><span class=muted>{_e(f.by)}: "
            f"{_e(f.rationale)}</span></p>" for f in s.failures)
        fails.append(f'<div class="failure"><b><a href="#rule-{_e(r.rule_id)}">{_e(r.rule_id)}'
                     f'</a></b> — {_e(rate_text(s.compliance))} · <code>{_e(r.source)}</code>'
                     f'<p>{_e(r.text)}</p>{quotes}{examples}</div>')
    cal_html = ""
    for cb in (report.calibration, report.text_agreement):
        if cb is None:
            continue
        if not cb.n:
            cal_html += (f"<p class=fail>The judge <code>{_e(cb.judge)}</code> is uncalibrated: "
                         f"{_e(cb.note)}. Its verdicts are not measured against any human "
                         "label; read every figure with that in mind.</p>")
            continue
        flips = (f" Rule flips judged consistently: {cb.flips[0]}/{cb.flips[1]}."
                 if cb.flips else "")
        cal_html += (
            f"<p>Verdicts come from the rules' checks and the judge <code>{_e(cb.judge)}</code>. "
            f"On {cb.n} human-labelled answers (<code>{_e(cb.source)}</code>) it agreed "
            f"{cb.correct} times ({pct(cb.accuracy)}, 95% CI {pct(cb.accuracy_ci[0])}–"
            f"{pct(cb.accuracy_ci[1])}; chance {pct(cb.base_rate)}; macro-F1 "
            f"{cb.macro_f1:.2f}; kappa {cb.kappa:.2f}).{flips} Confusion: "
            + ", ".join(f"{_e(k)} {v}" for k, v in sorted(cb.confusion.items())) + ".</p>")
        if not cb.trusted:
            cal_html += ('<p class=fail>The judge is not shown to be better than chance on '
                         "human labels: its verdicts are reported as undecided and no "
                         "compliance figure rests on them. Use a stronger judge "
                         "(<code>--judge-model</code>), more labelled examples in the spec, or "
                         "more programmatic checks.</p>")
    gate = ""
    if report.gate is not None and report.gate.failing:
        gate = ("<p class=fail>Clauses below the gate: " + ", ".join(
            f'<a href="#clause-{_e(c)}">{_e(c)}</a>' for c in report.gate.failing) + "</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rulealign audit — {_e(p['title'])}</title><style>{_CSS}</style>
<script>{_JS}</script></head>
<body><main>
<h1>{_e(p['title'])}</h1>
<p class=muted>Policy <code>{_e(p['id'])}</code> {_e(p.get('version') or '')} · spec
{_e(p['spec_hash'][:12])} · {_e(p['rules'])} rules in {_e(p['clauses'])} clauses · audited
{_e(report.created)} with rulealign {_e(report.rulealign)}</p>
<ul>{models}</ul>
<div class="cards">{''.join(cards)}</div>{gate}{changed}{buckets}{cal_html}
<h2>Compliance per rule</h2>{_rule_plot(report)}
<h2>Clauses</h2>{_clause_heatmap(report)}
<p><label><input type="checkbox" id="only-failing"> show only clauses and rules with
violations</label></p>
<table><tr><th>clause</th><th>text</th><th>rules</th><th>held-out items</th>
<th>before</th><th>after</th>{'<th>prefers compliant: change</th>' if report.changes else ''}
<th>status</th></tr>{''.join(crow)}</table>
<h2>Failing rules ({_e(len(fails))})</h2>{''.join(fails) or '<p>None.</p>'}
<h2>Rules</h2>
<table><tr><th>rule</th><th>text and source</th><th>before</th><th>after</th>
<th>over-refusal</th><th>prefers compliant</th></tr>{''.join(rrow)}</table>
<h2>Coverage: rules × boundary axes</h2>{_coverage_matrix(report)}
<h2>Conflicts</h2>{_conflict_graph(report)}
</main></body></html>
"""
