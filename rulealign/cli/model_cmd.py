"""``rulealign model``: prepare the embedded default model and say what will run it."""

from __future__ import annotations

import argparse
import json

from rulealign.cli.output import print_diagnostics, table
from rulealign.errors import RulealignError

HELP = """examples:
  rulealign model prepare
  rulealign model info
  rulealign model info --model ./my-checkpoint --backend transformers --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model", help="prepare and inspect models", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    prep = verbs.add_parser("prepare", help="convert the embedded default model once (cached)")
    prep.set_defaults(func=prepare)
    info = verbs.add_parser("info", help="which model and backend will be used, and why")
    info.add_argument("--model", default="default",
                      help="'default' or a local checkpoint folder (default: default)")
    info.add_argument("--backend", default="auto",
                      help="auto, vllm, transformers, openai or fake (default: auto)")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=show_info)


def prepare(args: argparse.Namespace) -> int:
    from rulealign.llm.checkpoint import prepare_default_model

    try:
        ref = prepare_default_model()
    except RulealignError as exc:
        print_diagnostics(exc.diagnostics)
        return 1
    print(f"default model ready: {ref.path}")
    print(f"  id {ref.model_id}, GGUF sha256 {ref.hash[:16]}…")
    return 0


def model_info(model: str = "default", backend: str = "auto") -> dict[str, object]:
    """What ``rulealign model info`` reports, as a dict."""
    from rulealign.llm import choose_backend, vllm_status
    from rulealign.llm.checkpoint import (
        DEFAULT_MODEL,
        cache_dir,
        default_gguf,
        file_sha256,
        resolve_model,
    )

    chosen, why = choose_backend(backend)
    info: dict[str, object] = {"backend": chosen, "why": why,
                               "vllm_available": vllm_status()[0], "cache": str(cache_dir())}
    if model == DEFAULT_MODEL:
        gguf = default_gguf()
        info["gguf"] = str(gguf)
        info["gguf_sha256"] = file_sha256(gguf)
    ref = resolve_model(model)
    info.update(model=ref.model_id, path=str(ref.path), hash=ref.hash)
    cfg_path = ref.path / "config.json"
    cfg = json.loads(cfg_path.read_text())
    info["architecture"] = (cfg.get("architectures") or ["?"])[0]
    info["layers"] = cfg.get("num_hidden_layers")
    info["hidden_size"] = cfg.get("hidden_size")
    weights = sum(p.stat().st_size for p in ref.path.glob("*.safetensors"))
    info["weights_bytes"] = weights
    return info


def show_info(args: argparse.Namespace) -> int:
    try:
        info = model_info(args.model, args.backend)
    except RulealignError as exc:
        print_diagnostics(exc.diagnostics)
        return 1
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    table(["field", "value"], [(k, v) for k, v in info.items()], max_width=100)
    return 0
