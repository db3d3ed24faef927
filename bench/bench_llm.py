"""Generation benchmark: every backend on the default model, side by side in one run.

For each backend (vllm offline engine, transformers + outlines, openai against vLLM's own
server on loopback) at batch 1 and batch 32, constrained (JSON schema) and unconstrained:
tokens/s, schema-valid objects/s, validity and truncation rates. The machine's memory
bandwidth is measured in the same run, and each throughput is printed as a fraction of the
bandwidth limit: a decoding step reads every weight once, so at batch B the limit is
B x bandwidth / weight bytes tokens/s. The compute limit is measured too: the step's matrix
products timed alone with torch on all cores, which at batch 32 in float32 binds first.

Writes bench/results/llm.json. Targets on 2 cores: vllm at least 250 structured tokens/s at
batch 32; constrained at most 25% slower than unconstrained; all non-truncated outputs
schema-valid, truncations under 2%.

    python bench/bench_llm.py [--backends vllm,transformers,openai] [--hf-prompts 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")

from pydantic import BaseModel, Field  # noqa: E402

from rulealign.llm import Sampling, load_backend  # noqa: E402
from rulealign.llm.base import Backend  # noqa: E402
from rulealign.llm.checkpoint import ModelRef, prepare_default_model  # noqa: E402


class Case(BaseModel):
    """A synthetic support exchange, the shape of what the synthesizer asks for."""

    user_prompt: str = Field(max_length=300)
    response: str = Field(max_length=400)
    complies: bool
    rule_id: Literal["refund-cap", "pii-share", "escalate-legal"]


TOPICS = ["a refund over $100", "a refund of $20", "sharing a customer's phone number",
          "a threat of legal action", "a late delivery", "a damaged item", "a password reset",
          "a price match request"]


def prompts(n: int) -> list[list[dict[str, str]]]:
    return [[{"role": "system", "content": "You write test cases for a support-bot policy. "
              "Reply with one JSON object with the fields user_prompt, response, complies "
              "and rule_id."},
             {"role": "user", "content": f"Write case {i} about {TOPICS[i % len(TOPICS)]}."}]
            for i in range(n)]


def memory_bandwidth_gbs() -> float:
    """Copy bandwidth (read + write bytes per second) over a 512 MB buffer, best of 5."""
    import torch

    a = torch.empty(128 * 1024 * 1024, dtype=torch.float32).fill_(1.0)
    b = torch.empty_like(a)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        b.copy_(a)
        best = min(best, time.perf_counter() - t)
    return 2 * a.numel() * 4 / best / 1e9


def decode_gemms(ref: ModelRef) -> list[tuple[int, int, int]]:
    """(in, out, count) of every matrix product in one decoding step, fused as vLLM fuses them
    (q/k/v into one, gate/up into one), plus the output head over the vocabulary."""
    c = json.loads((ref.path / "config.json").read_text())
    h, inter, layers = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    head_dim = c.get("head_dim") or h // c["num_attention_heads"]
    qkv = (c["num_attention_heads"] + 2 * c.get("num_key_value_heads", c["num_attention_heads"])) * head_dim
    return [(h, qkv, layers), (c["num_attention_heads"] * head_dim, h, layers), (h, 2 * inter, layers),
            (inter, h, layers), (h, c["vocab_size"], 1)]


def compute_limit_tok_s(ref: ModelRef, batch: int, kernels: str) -> tuple[float, float]:
    """The fastest decoding this CPU's matrix products allow, and their speed in GFLOP/s.

    Each product of one decoding step at ``batch`` tokens is timed alone (float32, all cores,
    best of 5), and the step's time is their sum: an upper bound, since attention over the
    cache, sampling, structured-output masks and scheduling come on top. ``kernels``: "vllm"
    times the kernels vLLM's CPU backend picks for each layer (its own dispatch: prepacked
    oneDNN or small-GEMM kernels), "torch" plain ``torch.nn.functional.linear`` (what the
    transformers backend runs). Where the bandwidth limit assumes the weights stream at copy
    speed, this one asks what the arithmetic allows."""
    import torch

    step, flops = 0.0, 0.0
    for k, n, count in decode_gemms(ref):
        layer = torch.nn.Linear(k, n, bias=False)
        layer.weight.requires_grad_(False)
        if kernels == "vllm":
            from vllm.model_executor.layers.utils import dispatch_cpu_unquantized_gemm

            dispatch_cpu_unquantized_gemm(layer, remove_weight=False)
            linear: Any = layer.cpu_linear
        else:
            linear = torch.nn.functional.linear
        x = torch.randn(batch, k)
        for _ in range(3):
            linear(x, layer.weight, None)
        best = float("inf")
        for _ in range(5):
            t, reps = time.perf_counter(), 0
            while reps < 3 or time.perf_counter() - t < 0.2:
                linear(x, layer.weight, None)
                reps += 1
            best = min(best, (time.perf_counter() - t) / reps)
        step += best * count
        flops += 2 * batch * k * n * count
    return batch / step, flops / step / 1e9


def weight_bytes(ref: ModelRef, backend: str) -> int:
    params = json.loads((ref.path / "config.json").read_text())
    n = 134_515_008 if params.get("hidden_size") == 576 else None  # SmolLM2-135M
    if n is None:
        n = sum(p.stat().st_size for p in ref.path.glob("*.safetensors")) // 4
    return n * 4  # float32 on CPUs without bf16 (the dtype every backend uses here)


def run_config(backend: Backend, batch: int, n: int, constrained: bool) -> dict[str, object]:
    chats = prompts(n)
    sampling = Sampling(temperature=0.7, seed=11)
    t0 = time.perf_counter()
    gens = []
    for start in range(0, n, batch):
        gens += backend.generate(chats[start:start + batch], Case, sampling,
                                 constrain=constrained, tag=f"bench-b{batch}")
    dt = time.perf_counter() - t0
    tokens = sum(g.completion_tokens for g in gens)
    valid = sum(g.ok for g in gens)
    truncated = sum(g.outcome == "truncated" for g in gens)
    non_trunc = n - truncated
    return {"batch": batch, "prompts": n, "constrained": constrained, "seconds": round(dt, 2),
            "tokens": tokens, "tokens_per_s": round(tokens / dt, 1),
            "valid_objects_per_s": round(valid / dt, 3), "valid": valid,
            "truncated": truncated, "truncation_rate": round(truncated / n, 4),
            "valid_rate_non_truncated": round(valid / non_trunc, 4) if non_trunc else None}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(ref: ModelRef) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(ref.path),
         "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port),
         "--dtype", "float32", "--max-model-len", "2048", "--gpu-memory-utilization", "0.3",
         "--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return proc, f"{url}/v1"
        except OSError:
            time.sleep(2)
    proc.kill()
    raise SystemExit("vLLM server did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", default="vllm,transformers,openai")
    ap.add_argument("--hf-prompts", type=int, default=8,
                    help="prompts per transformers config (it is slow on CPU)")
    args = ap.parse_args()
    ref = prepare_default_model()
    bw = memory_bandwidth_gbs()
    def limits() -> dict[tuple[str, int], tuple[float, float]]:
        return {(k, b): compute_limit_tok_s(ref, b, k) for k in ("vllm", "torch") for b in (1, 32)}

    # Shared machines drift (seen here: the same limit measured at 117 and 227 tok/s an hour
    # apart), so the limit is measured before and after the backends and the higher taken.
    compute_start = limits()
    rows: list[dict[str, object]] = []
    for name in args.backends.split(","):
        proc = None
        t0 = time.perf_counter()
        if name == "openai":
            proc, url = start_server(ref)
            backend = load_backend("openai", "smollm2", base_url=url, concurrency=32)
        else:
            backend = load_backend(name, ref.path)
        start_s = time.perf_counter() - t0
        try:
            backend.generate(prompts(2), Case, Sampling(seed=1))  # warm-up (grammar compile)
            for batch in (1, 32):
                n = (args.hf_prompts if name == "transformers" else 32) if batch == 32 else 4
                for constrained in (True, False):
                    row = run_config(backend, batch, n, constrained)
                    row.update(backend=name, start_s=round(start_s, 1))
                    limit = batch * bw * 1e9 / weight_bytes(ref, name)
                    row["bandwidth_limit_tok_s"] = round(limit, 1)
                    row["fraction_of_limit"] = round(float(row["tokens_per_s"]) / limit, 4)  # type: ignore[arg-type]
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        finally:
            backend.close()
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=60)
    compute_end = limits()
    compute = {key: max(compute_start[key], compute_end[key]) for key in compute_start}
    for row in rows:
        ceiling = compute[("torch" if row["backend"] == "transformers" else "vllm", int(row["batch"]))][0]  # type: ignore[call-overload]
        row["compute_limit_tok_s"] = round(ceiling, 1)
        row["fraction_of_compute_limit"] = round(float(row["tokens_per_s"]) / ceiling, 4)  # type: ignore[arg-type]
    print()
    print(f"memory bandwidth {bw:.1f} GB/s; weights {weight_bytes(ref, 'vllm') / 1e6:.0f} MB "
          f"(float32); {os.cpu_count()} cores; {platform.processor() or platform.machine()}")
    for (kern, b), (tok_s, gflops) in compute.items():
        print(f"compute limit, {kern} kernels, batch {b}: {tok_s:.0f} tok/s (the step's matrix "
              f"products alone, at {gflops:.1f} GFLOP/s; before {compute_start[(kern, b)][0]:.0f}, "
              f"after {compute_end[(kern, b)][0]:.0f})")
    head = (f"{'backend':<13}{'batch':>5}{'constr':>7}{'tok/s':>9}{'obj/s':>8}{'valid':>8}"
            f"{'trunc':>7}{'of bw':>8}{'of compute':>11}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['backend']:<13}{r['batch']:>5}{'yes' if r['constrained'] else 'no':>7}"
              f"{r['tokens_per_s']:>9}{r['valid_objects_per_s']:>8}"
              f"{str(r['valid']) + '/' + str(r['prompts']):>8}{r['truncated']:>7}"
              f"{100 * float(r['fraction_of_limit']):>7.1f}%"  # type: ignore[arg-type]
              f"{100 * float(r['fraction_of_compute_limit']):>10.1f}%")  # type: ignore[arg-type]
    for name in args.backends.split(","):
        by = {(r["batch"], r["constrained"]): r for r in rows if r["backend"] == name}
        if (32, True) in by and (32, False) in by:
            c, u = by[(32, True)]["tokens_per_s"], by[(32, False)]["tokens_per_s"]
            print(f"{name}: constrained/unconstrained tokens/s at batch 32 = "
                  f"{float(c) / float(u):.2f}")  # type: ignore[arg-type]
    out = ROOT / "bench" / "results" / "llm.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d"), "machine": {"cores": os.cpu_count(),
                                                       "cpu": platform.processor()},
        "memory_bandwidth_gbs": round(bw, 2),
        "compute_limit": {f"{kern}-b{b}": {"tok_s": round(t, 1), "gflops": round(g, 1),
                                           "before_tok_s": round(compute_start[(kern, b)][0], 1),
                                           "after_tok_s": round(compute_end[(kern, b)][0], 1)}
                          for (kern, b), (t, g) in compute.items()}, "weight_bytes": weight_bytes(ref, "vllm"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
