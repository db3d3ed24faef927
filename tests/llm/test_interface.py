"""The generation interface, through the fake backend: outcomes, budgets, log and cache."""

from __future__ import annotations

import json
import sqlite3
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from rulealign.errors import ModelError
from rulealign.llm import GenerationLog, RawOutput, Sampling, choose_backend, load_backend
from rulealign.llm.base import DEFAULT_TEXT_TOKENS
from rulealign.llm.budget import schema_token_budget
from rulealign.llm.fake import FakeBackend


class Verdict(BaseModel):
    verdict: Literal["complies", "violates", "not_applicable"]
    rationale: str = Field(max_length=200)


CHAT = [{"role": "user", "content": "Judge this answer."}]
GOOD = '{"verdict": "complies", "rationale": "It asks for approval first."}'


def test_valid_output_becomes_an_instance() -> None:
    fake = FakeBackend([GOOD])
    [gen] = fake.generate([CHAT], Verdict)
    assert gen.ok and gen.code is None
    assert gen.value == Verdict(verdict="complies", rationale="It asks for approval first.")


def test_invalid_json_is_a_recorded_failure_naming_the_field() -> None:
    fake = FakeBackend(['{"verdict": "maybe", "rationale": "x"}', "not json at all"])
    bad_value, not_json = fake.generate([CHAT, CHAT], Verdict)
    assert bad_value.outcome == "invalid" and bad_value.code == "RA307"
    assert "verdict" in (bad_value.message or "") and bad_value.value is None
    assert not_json.outcome == "invalid" and not_json.code == "RA307"


def test_cut_off_output_is_truncated_not_invalid() -> None:
    fake = FakeBackend([RawOutput('{"verdict": "compl', "length", 5, 40)])
    [gen] = fake.generate([CHAT], Verdict, Sampling(max_tokens=40))
    assert gen.outcome == "truncated" and gen.code == "RA306"
    assert "40 tokens" in (gen.message or "")


def test_complete_object_at_the_budget_is_still_ok() -> None:
    fake = FakeBackend([RawOutput(GOOD, "length", 5, 30)])
    [gen] = fake.generate([CHAT], Verdict)
    assert gen.ok


def test_free_text_cut_off_is_truncated() -> None:
    fake = FakeBackend([RawOutput("I will", "length", 5, 2), "Done."])
    cut, done = fake.generate([CHAT, CHAT], None, Sampling(max_tokens=2))
    assert cut.outcome == "truncated" and done.ok and done.value == "Done."


def test_refusal_and_backend_error_are_recorded_per_item() -> None:
    fake = FakeBackend([RawOutput("I can't help with that.", "refused", code="RA308",
                                  message="the model refused: policy"), GOOD,
                        RawOutput("", "error", code="RA309", message="server down")])
    refused, ok, err = fake.generate([CHAT, CHAT, CHAT], Verdict)
    assert (refused.outcome, refused.code) == ("refused", "RA308")
    assert ok.ok
    assert (err.outcome, err.code, err.message) == ("error", "RA309", "server down")


def test_running_out_of_replies_fails_only_the_extra_items() -> None:
    fake = FakeBackend([GOOD])
    first, second = fake.generate([CHAT, CHAT], Verdict)
    assert first.ok
    assert second.outcome == "error" and second.code == "RA312"


def test_a_crashing_backend_fails_its_items_without_raising() -> None:
    def explode(chat: object, schema: object) -> str:
        raise RuntimeError("engine died")

    fake = FakeBackend(responder=explode)
    gens = fake.generate([CHAT, CHAT], Verdict)
    assert [g.outcome for g in gens] == ["error", "error"]
    assert all("engine died" in (g.message or "") for g in gens)


def test_budget_comes_from_the_schema_when_not_given() -> None:
    fake = FakeBackend([GOOD, "text"])
    fake.generate([CHAT], Verdict)
    fake.generate([CHAT], None)
    structured, free = fake.requests
    assert structured.sampling.max_tokens == schema_token_budget(Verdict.model_json_schema())
    assert structured.schema == Verdict.model_json_schema()
    assert free.sampling.max_tokens == DEFAULT_TEXT_TOKENS and free.schema is None


def test_unconstrained_call_sends_no_schema_but_still_validates() -> None:
    fake = FakeBackend(["nope"])
    [gen] = fake.generate([CHAT], Verdict, constrain=False)
    assert fake.requests[0].schema is None
    assert gen.outcome == "invalid"


def test_budget_grows_with_string_and_list_limits() -> None:
    class Short(BaseModel):
        text: str = Field(max_length=50)

    class Long(BaseModel):
        text: str = Field(max_length=500)

    class Many(BaseModel):
        items: list[Short] = Field(max_length=10)

    short = schema_token_budget(Short.model_json_schema())
    long = schema_token_budget(Long.model_json_schema())
    many = schema_token_budget(Many.model_json_schema())
    assert short < long
    assert many > 10 * (short - 10)
    # A true upper bound (each token adds at least one character), and not wildly more.
    assert 500 <= long <= 500 * 1.5


def test_log_records_every_call_and_answers_repeats_from_cache(tmp_path) -> None:
    log = GenerationLog(tmp_path / "gen.sqlite")
    fake = FakeBackend([GOOD, RawOutput("", "error", code="RA309", message="down")], log=log)
    first = fake.generate([CHAT, [{"role": "user", "content": "other"}]], Verdict,
                          Sampling(seed=3), tag="verifier")
    assert [g.outcome for g in first] == ["ok", "error"]
    fake.enqueue(GOOD)
    again = fake.generate([CHAT, [{"role": "user", "content": "other"}]], Verdict,
                          Sampling(seed=3))
    assert again[0].cached and again[0].value == first[0].value
    assert not again[1].cached and again[1].ok  # errors are never reused
    assert len(fake.requests) == 3
    # A different seed is a different request.
    fake.enqueue(GOOD)
    [other_seed] = fake.generate([CHAT], Verdict, Sampling(seed=4))
    assert not other_seed.cached
    assert log.count() == 5
    row = sqlite3.connect(log.path).execute(
        "SELECT backend, model_id, tag, settings, prompt, outcome, output_type "
        "FROM generations ORDER BY id LIMIT 1").fetchone()
    assert row[0] == "fake" and row[1] == "fake-model" and row[2] == "verifier"
    assert json.loads(row[3])["seed"] == 3
    assert json.loads(row[4]) == CHAT
    assert row[5] == "ok" and row[6] == "Verdict"


def test_cache_can_be_turned_off(tmp_path) -> None:
    log = GenerationLog(tmp_path / "gen.sqlite")
    fake = FakeBackend([GOOD, GOOD], log=log, use_cache=False)
    fake.generate([CHAT], Verdict)
    [gen] = fake.generate([CHAT], Verdict)
    assert not gen.cached and len(fake.requests) == 2


def test_adapter_on_a_backend_without_lora_is_refused() -> None:
    class NoLora(FakeBackend):
        supports_lora = False

    with pytest.raises(ValueError, match="LoRA"):
        NoLora([GOOD]).generate([CHAT], Verdict, adapter="some/adapter")


def test_unknown_backend_is_a_coded_error_with_suggestion() -> None:
    with pytest.raises(ModelError) as exc:
        choose_backend("vlm")
    assert exc.value.code == "RA304" and "did you mean 'vllm'" in str(exc.value)


def test_explicit_backend_is_used_and_auto_explains_itself(monkeypatch) -> None:
    assert choose_backend("transformers") == ("transformers", "chosen explicitly")
    monkeypatch.setattr("rulealign.llm.vllm_status", lambda: (False, "vllm is not installed"))
    name, why = choose_backend("auto")
    assert name == "transformers" and "fallback" in why and "not installed" in why
    monkeypatch.setenv("RULEALIGN_BACKEND", "fake")
    assert choose_backend("auto")[0] == "fake"


def test_openai_backend_without_server_or_key_is_a_coded_error(monkeypatch) -> None:
    with pytest.raises(ModelError) as exc:
        load_backend("openai", "some-model")
    assert exc.value.code == "RA305"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ModelError) as exc:
        load_backend("openai", "gpt-x", base_url="https://api.example.com/v1")
    assert exc.value.code == "RA311" and "OPENAI_API_KEY" in str(exc.value)
