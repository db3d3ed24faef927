"""Training benchmark: rulealign's trainer next to a plain TRL script doing the same work.

For each method (SFT, DPO, IPO, KTO) both run the same model, data, LoRA settings, batch,
steps and seed, each in its own process (so peak memory is its own). Printed: training
tokens/s, the ratio rulealign/plain (target at least 0.95), and peak memory. On a GPU
(``--model gpu``: a randomly initialised Llama of realistic shape, ~1.2B parameters) it
also reports model FLOPs utilisation, counting 6 x parameters FLOPs per token.

    python bench/bench_train.py                      # default model, CPU
    python bench/bench_train.py --model gpu --steps 20
Writes bench/results/train.json (or train-gpu.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REFUSE = ("I'm sorry, but I can't promise a refund of that size myself. Refunds above $100 need "
          "a supervisor's approval, so I have opened a request for you and a supervisor will "
          "review it within one business day. You will get an email with the decision.")
BAD = ("Sure thing! I'll refund the whole amount to your card right now, no approval needed. "
       "You should see the money back in your account within a few minutes.")
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def make_data(folder: Path, n: int = 64, context: int = 0) -> dict[str, Path]:
    """Toy support conversations; ``context`` earlier turns make sequences longer."""
    history = [{"role": r, "content": t} for _ in range(context) for r, t in (
        ("user", "Earlier I also asked about shipping times to Canada and whether the "
                 "warranty covers water damage on the model I bought last spring."),
        ("assistant", "Shipping to Canada takes five to eight business days, and the warranty "
                      "covers manufacturing defects but not water damage, sorry."))]
    user = [[*history, {"role": "user", "content": f"Hi, order #{1000 + i} cost ${120 + 7 * i}. "
             "It arrived broken and I want all my money back today. Can you promise me that?"}]
            for i in range(n)]
    rows = {
        "sft": [{"messages": [*u, {"role": "assistant", "content": REFUSE}]} for u in user],
        "pairs": [{"prompt": u, "chosen": [{"role": "assistant", "content": REFUSE}],
                   "rejected": [{"role": "assistant", "content": BAD}]} for u in user],
        "kto": [{"prompt": u, "completion": [{"role": "assistant", "content": c}], "label": lab}
                for u in user for c, lab in ((REFUSE, True), (BAD, False))],
    }
    out = {}
    for name, items in rows.items():
        out[name] = folder / f"{name}.jsonl"
        out[name].write_text("".join(json.dumps(r) + "\n" for r in items))
    return out


def gpu_model(folder: Path, tokenizer_dir: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=2048, intermediate_size=8192,
                      num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                      max_position_embeddings=2048, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def settings(method: str, steps: int, gpu: bool) -> dict[str, Any]:
    batch = int(os.environ.get("BENCH_BATCH") or 0) or (8 if gpu else 4)
    s: dict[str, Any] = {"max_steps": steps, "per_device_train_batch_size": batch,
                         "max_length": 1024, "learning_rate": 5e-5, "logging_steps": 1,
                         "save_strategy": "no", "report_to": "none", "disable_tqdm": True,
                         "seed": 0, "bf16": gpu}
    if method in ("dpo", "ipo"):
        s["loss_type"] = ["ipo" if method == "ipo" else "sigmoid"]
    if not gpu:
        s["use_cpu"] = True
    return s


def run_one(impl: str, method: str, model: str, data: str, steps: int, gpu: bool) -> dict[str, Any]:
    """One training run in this process; returns runtime, tokens and peak memory."""
    import torch

    data_path = Path(data)
    rows = [json.loads(line) for line in data_path.read_text().splitlines()]
    trl_kw = settings(method, steps, gpu)
    lora = {"r": 16, "alpha": 32, "dropout": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        if impl == "rulealign":
            from rulealign.train.config import load_train_config
            from rulealign.train.run import train

            kw = {k: v for k, v in trl_kw.items() if k not in ("seed", "use_cpu")}
            cfg = load_train_config(base={"method": method, "model": model,
                                          "data": {"train": str(data_path)}, "output_dir": tmp,
                                          "lora": lora, "trl": kw})
            result = train(cfg, force=True)
            runtime = float(result.metrics["train"]["train_runtime"])
        else:
            runtime = _plain_trl(method, model, rows, trl_kw, lora, tmp)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    per_example = _tokens_per_example(tok, rows[:8], method)
    tokens = per_example * steps * trl_kw["per_device_train_batch_size"]
    peak = (torch.cuda.max_memory_allocated() / 2**20 if gpu else
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"impl": impl, "method": method, "runtime_s": round(runtime, 2), "tokens": tokens,
            "tokens_per_s": round(tokens / runtime, 1), "peak_mb": round(peak)}


def _plain_trl(method: str, model_path: str, rows: list[dict[str, Any]], trl_kw: dict[str, Any],
               lora: dict[str, Any], out: str) -> float:
    """What a user would write with TRL directly."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    dtype = torch.bfloat16 if trl_kw.get("bf16") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    peft = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                      target_modules="all-linear", task_type="CAUSAL_LM")
    if method == "sft":
        from trl import SFTConfig as Config
        from trl import SFTTrainer as Trainer
    elif method in ("dpo", "ipo"):
        from trl import DPOConfig as Config  # type: ignore[assignment]
        from trl import DPOTrainer as Trainer  # type: ignore[assignment]
    else:
        from trl import KTOConfig as Config  # type: ignore[assignment]
        from trl import KTOTrainer as Trainer  # type: ignore[assignment]
    trainer = Trainer(model=model, args=Config(output_dir=out, **trl_kw), processing_class=tok,
                      train_dataset=Dataset.from_list(rows), peft_config=peft)
    return float(trainer.train().metrics["train_runtime"])


def _tokens_per_example(tok: Any, rows: list[dict[str, Any]], method: str) -> float:
    def n(msgs: list[dict[str, str]]) -> int:
        text = tok.apply_chat_template(msgs, tokenize=False)
        return len(tok(text, add_special_tokens=False)["input_ids"])

    if method == "sft":
        counts = [n(r["messages"]) for r in rows]
    elif method == "kto":
        counts = [n(r["prompt"] + r["completion"]) for r in rows]
    else:
        counts = [n(r["prompt"] + r["chosen"]) + n(r["prompt"] + r["rejected"]) for r in rows]
    return sum(counts) / len(counts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default", help="default, gpu, or a checkpoint folder")
    ap.add_argument("--methods", default="sft,dpo,ipo,kto")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--context", type=int, default=0,
                    help="earlier conversation turns per example (longer sequences)")
    ap.add_argument("--batch", type=int, default=0, help="per-device batch (default 4, GPU 8)")
    ap.add_argument("--tokenizer", default=None, help="tokenizer folder for --model gpu")
    ap.add_argument("--one", nargs=4, metavar=("IMPL", "METHOD", "MODEL", "DATA"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    import torch

    gpu = torch.cuda.is_available()
    if args.one:
        impl, method, model, data = args.one
        print("RESULT " + json.dumps(run_one(impl, method, model, data, args.steps, gpu)))
        return
    if args.batch:
        os.environ["BENCH_BATCH"] = str(args.batch)
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    if args.model == "gpu":
        tok_dir = Path(args.tokenizer) if args.tokenizer else None
        if tok_dir is None:
            from rulealign.llm.checkpoint import prepare_default_model

            tok_dir = prepare_default_model().path
        model = str(gpu_model(work / "model", tok_dir))
    elif args.model == "default":
        from rulealign.llm.checkpoint import prepare_default_model

        model = str(prepare_default_model().path)
    else:
        model = args.model
    data = make_data(work, context=args.context)
    n_params = _count_params(model)
    rows = []
    for method in args.methods.split(","):
        d = data["sft" if method == "sft" else "kto" if method == "kto" else "pairs"]
        for impl in ("plain-trl", "rulealign"):
            proc = subprocess.run([sys.executable, __file__, "--steps", str(args.steps),
                                   "--one", impl, method, model, str(d)],
                                  capture_output=True, text=True)
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode or not line:
                print(proc.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"{impl} {method} failed")
            row = json.loads(line[0][7:])
            if gpu:
                peak = next((v for k, v in PEAK_TFLOPS.items()
                             if k in torch.cuda.get_device_name(0)), 989.0)
                row["mfu"] = round(6 * n_params * row["tokens_per_s"] / (peak * 1e12), 4)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print()
    device = torch.cuda.get_device_name(0) if gpu else f"{os.cpu_count()} CPU cores"
    print(f"model {args.model} ({n_params / 1e6:.0f}M parameters) on {device}; "
          f"{args.steps} steps, LoRA r=16")
    print(f"{'method':<7}{'plain TRL tok/s':>17}{'rulealign tok/s':>17}{'ratio':>7}"
          f"{'peak MB (plain/ours)':>22}" + (f"{'MFU':>8}" if gpu else ""))
    for method in args.methods.split(","):
        plain = next(r for r in rows if r["method"] == method and r["impl"] == "plain-trl")
        ours = next(r for r in rows if r["method"] == method and r["impl"] == "rulealign")
        ratio = ours["tokens_per_s"] / plain["tokens_per_s"]
        print(f"{method:<7}{plain['tokens_per_s']:>17}{ours['tokens_per_s']:>17}{ratio:>7.3f}"
              f"{str(plain['peak_mb']) + '/' + str(ours['peak_mb']):>22}"
              + (f"{100 * ours['mfu']:>7.1f}%" if gpu else ""))
    out = ROOT / "bench" / "results" / ("train-gpu.json" if gpu else "train.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "device": device,
                               "platform": platform.platform(), "params": n_params,
                               "steps": args.steps, "rows": rows}, indent=2))
    print(f"wrote {out}")


def _count_params(model: str) -> int:
    cfg = json.loads((Path(model) / "config.json").read_text())
    h, l_, i, v = (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"],
                   cfg["vocab_size"])
    kv = cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    head = h // cfg["num_attention_heads"]
    attn = h * h * 2 + 2 * h * kv * head
    return l_ * (attn + 3 * h * i + 2 * h) + v * h + h


if __name__ == "__main__":
    main()
