"""The real backends on the embedded default model (SmolLM2-135M-Instruct).

The same fixed prompts go to vLLM (offline engine), transformers + outlines, and an
OpenAI-compatible server (vLLM's own, started here on loopback): each must return
schema-valid objects. Failure paths are exercised for real: a model answering without
constraints, a budget too small, a server that is down, a request that times out.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from rulealign.llm import GenerationLog, Sampling, load_backend, vllm_status
from rulealign.llm.base import Backend
from rulealign.llm.checkpoint import ModelRef, prepare_default_model

pytestmark = pytest.mark.slow

needs_vllm = pytest.mark.skipif(not vllm_status()[0], reason=vllm_status()[1])


class Verdict(BaseModel):
    verdict: Literal["complies", "violates", "not_applicable"]
    rationale: str = Field(max_length=160)


RULE = "Agents must not promise refunds above $100 without supervisor approval."
ANSWERS = ["I will refund you $500 right away.", "I can refund the $40 charge now.",
           "Let me ask my supervisor before I approve a $300 refund.",
           "Our store opens at 9am."]
PROMPTS = [[{"role": "system", "content": f"You judge answers against this rule: {RULE}"},
            {"role": "user", "content": f"Answer: {a}\nDoes it comply with the rule?"}]
           for a in ANSWERS]


@pytest.fixture(scope="session")
def default_model() -> ModelRef:
    return prepare_default_model()


def _all_valid(backend: Backend) -> list[Verdict]:
    gens = backend.generate(PROMPTS, Verdict, Sampling(seed=7))
    assert [g.outcome for g in gens] == ["ok"] * len(PROMPTS), [g.message for g in gens]
    values = [g.value for g in gens]
    assert all(isinstance(v, Verdict) for v in values)
    assert all(g.completion_tokens > 0 for g in gens)
    return values  # type: ignore[return-value]


@pytest.fixture(scope="module")
def hf(default_model: ModelRef, tmp_path_factory) -> Iterator[Backend]:
    log = GenerationLog(tmp_path_factory.mktemp("hf") / "gen.sqlite")
    with load_backend("transformers", default_model.path, log=log) as backend:
        yield backend


def test_transformers_returns_schema_valid_objects(hf: Backend) -> None:
    _all_valid(hf)
    assert hf.log is not None and hf.log.count() == len(PROMPTS)


def test_without_constraints_the_small_model_fails_and_it_is_recorded(hf: Backend) -> None:
    class Refund(BaseModel):
        order_id: int
        amount_usd: float
        approved_by: str = Field(max_length=40)

    chats = [[{"role": "user", "content": "Refund order 7 for $20, approved by Kim."}]] * 2
    gens = hf.generate(chats, Refund, Sampling(max_tokens=48), constrain=False)
    assert all(g.outcome in ("invalid", "truncated") for g in gens)
    assert all(g.code in ("RA306", "RA307") and g.message for g in gens)
    constrained = hf.generate(chats, Refund, Sampling(max_tokens=96))
    assert all(g.ok for g in constrained), [g.message for g in constrained]


def test_too_small_a_budget_is_counted_as_truncation(hf: Backend) -> None:
    gens = hf.generate(PROMPTS[:2], Verdict, Sampling(max_tokens=6))
    assert [g.outcome for g in gens] == ["truncated", "truncated"]


@pytest.fixture(scope="module")
def engine(default_model: ModelRef) -> Iterator[Backend]:
    # Eager mode starts in half the time of the compiled default (tests care about
    # behaviour, bench/bench_llm.py about speed).
    with load_backend("vllm", default_model.path, enable_lora=True, max_lora_rank=8,
                      max_model_len=2048, enforce_eager=True) as backend:
        yield backend


@needs_vllm
def test_vllm_returns_schema_valid_objects(engine: Backend, hf: Backend) -> None:
    fast = _all_valid(engine)
    slow = hf.generate(PROMPTS, Verdict, Sampling(seed=7))
    # Same greedy decoding under the same grammar; float kernels differ, so the labels
    # are compared for the record but only validity is required.
    agree = sum(a.verdict == b.value.verdict for a, b in zip(fast, slow, strict=True))
    print(f"vllm/transformers verdict agreement: {agree}/{len(PROMPTS)}")


PREFILLED = [{"role": "system", "content": "You are a customer support assistant."},
             {"role": "user", "content": "Can you refund my $150 kettle today?"},
             {"role": "assistant", "content": "I'm sorry, I can't promise that refund."}]


def _continues(backend: Backend) -> str:
    """A prefilled chat is continued: the text returned follows the opening, not a new turn
    (a new turn would start over, most often repeating a greeting or the opening)."""
    plain = PREFILLED[:2]
    gens = backend.generate([PREFILLED, plain], None,
                            Sampling(max_tokens=24, stop=("\n",)))
    assert all(g.completion_tokens > 0 for g in gens), [g.message for g in gens]
    cont, fresh = gens[0].text, gens[1].text
    assert cont != fresh and not cont.lstrip().startswith("I'm sorry, I can't promise")
    return cont


def test_transformers_continues_a_prefilled_reply(hf: Backend) -> None:
    from rulealign.llm.transformers_backend import TransformersBackend

    assert isinstance(hf, TransformersBackend)
    rendered = hf.render(PREFILLED)
    assert rendered.rstrip().endswith("I'm sorry, I can't promise that refund.")
    _continues(hf)


@needs_vllm
def test_vllm_continues_a_prefilled_reply(engine: Backend, hf: Backend) -> None:
    # greedy: the same continuation as transformers' for the same rendered text
    cont = _continues(engine)
    assert cont.split()[:3] == _continues(hf).split()[:3]


@needs_vllm
def test_vllm_serves_a_lora_adapter(engine: Backend, default_model: ModelRef,
                                    tmp_path: Path) -> None:
    """On CPU the adapter is merged into a cached checkpoint and the engine switches to it
    (and back to the base model when no adapter is asked for); on GPUs it is served unmerged."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(default_model.path)
    peft = get_peft_model(base, LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                                           init_lora_weights=False))
    peft.save_pretrained(tmp_path / "adapter")
    plain = engine.generate(PROMPTS, None, Sampling(max_tokens=24))
    adapted = engine.generate(PROMPTS, None, Sampling(max_tokens=24),
                              adapter=str(tmp_path / "adapter"))
    assert all(g.outcome in ("ok", "truncated") for g in plain + adapted)
    assert [g.text for g in plain] != [g.text for g in adapted]
    inner = getattr(engine, "inner", engine)
    if getattr(inner, "merge_lora", False):
        assert inner._serving != default_model.path    # the merged copy is being served
    # back to the base model: the same greedy answers as before (not from the log: a new seed)
    again = engine.generate(PROMPTS, None, Sampling(max_tokens=24, seed=1))
    assert [g.text for g in again] == [g.text for g in plain]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(default_model: ModelRef, tmp_path_factory) -> Iterator[str]:
    port = _free_port()
    logfile = tmp_path_factory.mktemp("server") / "vllm-server.log"
    env = {**os.environ, "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
    with logfile.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
             "--model", str(default_model.path), "--served-model-name", "smollm2",
             "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
             "--max-model-len", "2048", "--gpu-memory-utilization", "0.3", "--enforce-eager",
             "--structured-outputs-config",
             '{"backend": "xgrammar", "disable_any_whitespace": true}'],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 480
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited:\n{logfile.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vLLM server did not start:\n{logfile.read_text()[-3000:]}")
            time.sleep(2)
        yield f"{url}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@needs_vllm
def test_openai_backend_against_a_real_vllm_server(server: str) -> None:
    with load_backend("openai", "smollm2", base_url=server) as backend:
        _all_valid(backend)
        cut = backend.generate(PROMPTS[:2], Verdict, Sampling(max_tokens=6))
        assert [g.outcome for g in cut] == ["truncated", "truncated"]


@needs_vllm
def test_openai_timeout_is_a_recorded_failure(server: str) -> None:
    with load_backend("openai", "smollm2", base_url=server, timeout=0.001, max_retries=1,
                      backoff=0.01) as backend:
        [gen] = backend.generate(PROMPTS[:1], Verdict)
    assert gen.outcome == "error" and gen.code == "RA310" and "timed out" in (gen.message or "")


def test_openai_server_down_is_a_recorded_failure() -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"
    with load_backend("openai", "smollm2", base_url=url, max_retries=2,
                      backoff=0.01) as backend:
        gens = backend.generate(PROMPTS[:2], Verdict)
    assert [g.code for g in gens] == ["RA309", "RA309"]
    assert "after 3 attempt(s)" in (gens[0].message or "")
