# Image Generation — an executable interview-prep book.
#   make book   build the static book into _build/html (executes changed notebooks, cached)
#   make test   unit tests + re-execute every notebook with nbval
#   make data   fetch the data sets that are missing (both targets above run it first)
# Both create/reuse a cached venv (scripts/venv.sh), fetch the book's JS with npm and any missing data
# set (into ~/.cache/imagegen/data, sha256-verified); nothing else to set up.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# Evaluated on first use only, then cached (a plain `=` would re-run venv.sh at every expansion).
VENV = $(eval VENV := $$(shell bash scripts/venv.sh))$(VENV)
PY = $(VENV)/bin/python
# torch on a 2-core box: more threads than cores only thrash.
export OMP_NUM_THREADS ?= 2
export PYTHONHASHSEED = 0
# NOT exported globally: a kernel started with MPLBACKEND=Agg never shows figures (plt.show() is a
# no-op), so the book and nbval would silently lose every plot. Only the unit tests set it.
# How the book treats notebooks: cache (execute changed ones) | force | off (use committed outputs).
EXECUTE ?= cache
NOTEBOOKS = $(wildcard notebooks/*.ipynb)

# pytest exits 5 when it collects nothing; for us that is a broken suite, not a pass.
NO_TESTS_IS_FAILURE = { rc=$$?; [ $$rc -ne 5 ] || echo "pytest collected no tests: that is a failure" >&2; exit $$rc; }

.PHONY: book test unit nbval lab static venv data clean checkpoints-check
venv:
	@echo $(VENV)

static: _static/vendor/.complete
_static/vendor/.complete: package.json package-lock.json scripts/vendor_static.sh
	bash scripts/vendor_static.sh

# MNIST, Fashion-MNIST and the SR sets, where they are found ($IMAGEGEN_DATA alone if set; else a data
# folder beside the repository or ~/.cache/imagegen/data); a missing set is downloaded (a mirror:
# $IMAGEGEN_DATA_URL), every file verified. All present: ~0.2 s (presence only, and no torch import;
# the loaders hash every file they read).
data:
	@v=$(VENV); $$v/bin/python -m imagegen_lib.cli data download

book: static data
	@case "$(EXECUTE)" in cache|force|off|auto) ;; *) echo "EXECUTE must be cache|force|off|auto, got '$(EXECUTE)'" >&2; exit 2;; esac
	@v=$(VENV); test -x "$$v/bin/jupyter-book" || { echo "no venv (scripts/venv.sh failed?)" >&2; exit 1; }; \
	  trap 'rm -f _build_config.yml' EXIT; \
	  sed -E 's/^(\s*execute_notebooks:).*/\1 $(EXECUTE)/' _config.yml > _build_config.yml; \
	  $$v/bin/jupyter-book build . --config _build_config.yml -W --keep-going
	@echo "Book: file://$(CURDIR)/_build/html/index.html"

test: unit nbval

unit: data
	@v=$(VENV); MPLBACKEND=Agg $$v/bin/python -m pytest tests -q || $(NO_TESTS_IS_FAILURE)

# NUMERICS=<setting> runs the notebooks under another numerics setting of PyTorch's CPU backend
# (instruction set, thread count; listed in scripts/numerics_spread.py). CI runs them twice.
# NBVAL_JOBS=2 runs them in two nbval processes side by side, split by their recorded run times
# (scripts/nbval_groups.py), their reports printed one after the other: for a one-thread setting (generic-1t)
# on two cores, where one process leaves a core idle. Every notebook is still executed, each in
# its own kernel as before; the notebooks write no files, so two at a time cannot collide.
NUMERICS ?= native
NBVAL_JOBS ?= 1
NBVAL = $$v/bin/python scripts/numerics_spread.py --exec $(NUMERICS) -- \
	  $$v/bin/python -m pytest -q --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg \
	  --nbval-current-env -p no:cacheprovider
nbval: data
	@v=$(VENV); if [ "$(NBVAL_JOBS)" -le 1 ]; then $(NBVAL) notebooks || $(NO_TESTS_IS_FAILURE); else \
	  logs=$$(mktemp -d); trap 'rm -rf "$$logs"' EXIT; i=0; pids=(); \
	  while read -r group; do i=$$((i + 1)); echo "[nbval $$i] $$group"; \
	    ( $(NBVAL) $$group < /dev/null > "$$logs/$$i" 2>&1 || $(NO_TESTS_IS_FAILURE) 2>> "$$logs/$$i" ) & pids+=($$!); \
	  done < <($$v/bin/python scripts/nbval_groups.py $(NBVAL_JOBS) $(NOTEBOOKS)); \
	  [ $$i -gt 0 ] || { echo "nbval: no notebooks to run" >&2; exit 1; }; \
	  rc=0; for j in $$(seq $$i); do wait $${pids[$$((j - 1))]} || rc=1; echo "[nbval $$j]"; cat "$$logs/$$j"; done; \
	  exit $$rc; fi

lab:
	@v=$(VENV); $$v/bin/jupyter lab notebooks

clean:
	rm -rf _build _static/vendor node_modules .pytest_cache _build_config.yml
