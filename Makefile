# Every target installs what it needs first; a fresh machine needs only Python 3.11.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint demo bench bench-env fuzz clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check colorize_cli tests bench scripts fuzz
	$(BIN)/ruff format --check colorize_cli tests bench scripts fuzz

DEV    := ../shared/data/dev
DEMO   := demo-output
# Photos from the dev validation split (never trained on): landscape, animals, people, city, food.
DEMO_PHOTOS := sunhays80_canyon_sun_aokgdiugvxssbqyl.jpg bsds500-test_130014.jpg \
	imagenet_n02090379_redbone.jpg bsds500-train_144067.jpg urban100_img_084.jpg \
	imagenet_n07716358_zucchini.jpg imagenet_n04335435_streetcar.jpg \
	sunhays80_underwater_coral_reef_sun_bwuxsehdxqkpuptf.jpg

# Real photos -> grayscale -> colorized by the bundled model, plus a gray | colour | truth sheet.
demo: $(STAMP)
	rm -rf $(DEMO) && mkdir -p $(DEMO)/photos
	cd $(DEV) && cp $(DEMO_PHOTOS) $(CURDIR)/$(DEMO)/photos/
	$(BIN)/python scripts/to_gray.py $(DEMO)/gray $(DEMO)/photos/*.jpg > /dev/null
	$(BIN)/colorize apply $(DEMO)/gray --out-dir $(DEMO)/colorized
	$(BIN)/colorize eval default $(DEMO)/photos --sheet $(DEMO)/sheet.png
	@echo "demo: grayscale inputs in $(DEMO)/gray/, colorized in $(DEMO)/colorized/,"
	@echo "      side-by-side sheet (gray | colorized | truth) in $(DEMO)/sheet.png"

# Benchmarks (minutes; never part of `make test`). Each prints a Markdown table for docs/.
BENCH_OUT := /tmp/colorize-bench
TORCH_VENV := bench/.venv-torch
# The PyTorch peer's own environment: the CPU wheel only (a plain `torch` would pull a CUDA build),
# and the EfficientNet-Lite encoder of the lite0 preset's peer (needs only torch).
$(TORCH_VENV)/.installed:
	$(PYTHON) -m venv $(TORCH_VENV) || python3 -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install --quiet torch==2.13.0 numpy \
		efficientnet-lite-pytorch==0.1.0
	touch $@

bench-env: $(TORCH_VENV)/.installed

# Every stage against this machine's ceilings (matmul peak, a bare decode loop, PyTorch): minutes.
bench: $(STAMP) bench-env
	mkdir -p $(BENCH_OUT)
	$(BIN)/colorize prepare $(DEV) $(BENCH_OUT)/dev.h5 --size 144 --overwrite > /dev/null
	$(BIN)/python bench/train_step.py --presets tiny small --shards $(BENCH_OUT)/dev.h5
	$(BIN)/python bench/step_settings.py
	$(BIN)/python bench/torch_peer.py --presets tiny small
	$(BIN)/python bench/prepare.py --rounds 3
	$(BIN)/python bench/apply.py --presets small
	$(BIN)/python bench/profile_apply.py
	$(BIN)/python bench/recombine.py
	$(BIN)/python bench/lite_kernels.py
	$(BIN)/python bench/compression.py --photos 300 --size 256 --out $(BENCH_OUT)/compression
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/backends.py --repeats 3
	$(BIN)/python bench/video.py

# Fuzz the photo and shard readers for a bounded time (never part of `make test`).
fuzz: $(STAMP)
	$(BIN)/python fuzz/run.py --seconds 60

clean:
	rm -rf $(VENV) $(TORCH_VENV) build *.egg-info .pytest_cache .ruff_cache demo-output
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
