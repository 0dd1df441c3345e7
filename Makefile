# Every target installs what it needs first; a fresh machine needs only Python 3.11.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint demo bench fuzz clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check colorize_cli tests bench
	$(BIN)/ruff format --check colorize_cli tests bench

DEV    := ../shared/data/dev
DEMO   := demo-output

# Until a default model is bundled: prepare shards from a few real photos and describe them.
demo: $(STAMP)
	rm -rf $(DEMO) && mkdir -p $(DEMO)/photos
	ls $(DEV)/*.jpg | awk 'NR % 100 == 1' | xargs -I{} cp {} $(DEMO)/photos/
	$(BIN)/colorize prepare $(DEMO)/photos $(DEMO)/demo.h5 --size 256 --val-fraction 0.2
	$(BIN)/colorize info $(DEMO)/demo.h5 $(DEMO)/demo.val.h5
	@echo "demo: shards written to $(DEMO)/ (photos copied to $(DEMO)/photos)"

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache demo-output
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
