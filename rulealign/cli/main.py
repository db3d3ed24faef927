"""``rulealign`` command line: thin argparse commands over the stage functions.

Exit codes: 0 success, 1 the input is invalid (or a gate failed), 2 usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from rulealign import __version__
from rulealign.cli import (
    audit_cmd,
    errors_cmd,
    judge_cmd,
    kg_cmd,
    model_cmd,
    run_cmd,
    spec_cmd,
    synth_cmd,
    train_cmd,
)

EPILOG = """examples:
  rulealign run specs/acme-support.yaml --out runs/acme
  rulealign spec check specs/acme-support.yaml
  rulealign spec show specs/acme-support.yaml
  rulealign spec extract specs/acme-support.md -o draft.yaml
  rulealign kg conflicts specs/acme-support.yaml
  rulealign synth preview specs/acme-support.yaml --per-rule 2
  rulealign judge train specs/acme-support.yaml --out judges/acme
  rulealign model info
  rulealign errors RA103
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rulealign", description="Compile a written policy into a model that follows it.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    spec_cmd.register(sub)
    kg_cmd.register(sub)
    model_cmd.register(sub)
    synth_cmd.register(sub)
    train_cmd.register(sub)
    judge_cmd.register(sub)
    audit_cmd.register(sub)
    run_cmd.register(sub)
    errors_cmd.register(sub)
    return parser


def quiet_libraries() -> None:
    """What the engines print that a user cannot act on (vLLM's INFO lines and FutureWarnings,
    PyTorch's NUMA notes, in this process and the engine's worker processes) stays out of the
    terminal. Each is a default: a variable the user set wins (``VLLM_LOGGING_LEVEL=INFO``,
    ``PYTHONWARNINGS=default``)."""
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    if "PYTHONWARNINGS" not in os.environ:
        os.environ["PYTHONWARNINGS"] = "ignore::FutureWarning,ignore::DeprecationWarning"
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)


def main(argv: Sequence[str] | None = None) -> int:
    quiet_libraries()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        return int(args.func(args))
    except BrokenPipeError:  # `rulealign ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
