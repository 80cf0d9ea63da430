# vaelab: every target creates or reuses the project-local environment first.
# A second call finds the stamp up to date and installs nothing.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
GRADING := $(VENV)/.grading-installed
WORKSPACE := my-notebooks
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
SHIPPED := src/vaelab/student_notebooks

# The same settings when stored outputs are produced (make outputs) and when
# they are checked (make test): no progress bars, no cached checkpoints.
export TQDM_DISABLE := 1
NB_ENV := VAELAB_TRAIN_FRESH=1

.PHONY: help venv run lab lab-masters test unit nbval student student-notebooks setup-cells \
	assign grader-metadata outputs bench capstone reproduce e2e clean

help:
	@echo "make run        execute every notebook into build/ (the committed notebooks are not touched)"
	@echo "make lab        students: copy the exercise versions into $(WORKSPACE)/ (once) and open them"
	@echo "make lab-masters  instructors: open the masters (solutions included) in JupyterLab"
	@echo "make test       ruff, unit tests, nbval regression, student-version tests, browser tests"
	@echo "make outputs    re-execute the notebooks in place (the only way stored outputs change)"
	@echo "make student    write build/student/ and build/instructor/"
	@echo "make student-notebooks  rewrite the student notebooks the package ships ($(SHIPPED)/)"
	@echo "make setup-cells  rewrite every notebook's setup cell from pyproject.toml [tool.vaelab]"
	@echo "make assign     install the graders; build/student/, build/nbgrader/ (course folder), build/otter/<nb>/dist"
	@echo "make grader-metadata  rewrite the masters' nbgrader cell metadata from their markers"
	@echo "make bench      training benchmark: prints a table, writes build/bench.json"
	@echo "make capstone   notebook 06's numbers: its model and notebook 04's MLP graded (SEEDS=3)"
	@echo "make reproduce  the IWAE paper's VAE baseline (STAGES=8 for the full protocol)"
	@echo "make e2e        drive the notebooks in JupyterLab with headless Chromium"

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	@touch $@

run: $(STAMP)
	$(PY) -m vaelab.tooling.execute --out build $(NOTEBOOKS)

$(GRADING): requirements-grading.txt $(STAMP)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-grading.txt
	@touch $@

# Options for `jupyter lab`, e.g. LAB_ARGS="--port 8899".
LAB_ARGS ?=
# Jupyter refuses to run as root (containers, some hub images) unless given --allow-root.
# That opt-out stays the user's decision: as root without it, say the one thing to set,
# before anything is written or started.
define refuse_root
	@if [ "$$(id -u)" = 0 ] && ! echo " $(LAB_ARGS) " | grep -q -e " --allow-root "; then \
		echo "make $@: you are root (a container?) and Jupyter refuses to run as root unless \
told: run 'make $@ LAB_ARGS=--allow-root' (the server still listens on localhost only, \
with a token), or run make as an ordinary user" >&2; exit 2; fi
endef

# Students work on the exercise versions; a notebook already in $(WORKSPACE) is never replaced.
lab: $(STAMP)
	$(refuse_root)
	$(PY) -m vaelab.tooling.student --workspace $(WORKSPACE) $(NOTEBOOKS)
	$(VENV)/bin/jupyter lab $(LAB_ARGS) $(WORKSPACE)

lab-masters: $(STAMP)
	$(refuse_root)
	$(VENV)/bin/jupyter lab $(LAB_ARGS) notebooks

test: $(STAMP) $(GRADING)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest tests
	$(NB_ENV) $(PY) -m pytest --nbval notebooks \
		--nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=300

unit: $(STAMP)
	$(PY) -m pytest tests -m "not slow and not e2e"

nbval: $(STAMP)
	$(NB_ENV) $(PY) -m pytest --nbval notebooks \
		--nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=300

outputs: $(STAMP)
	$(NB_ENV) $(PY) -m vaelab.tooling.execute --in-place $(NOTEBOOKS)

student: $(STAMP)
	$(PY) -m vaelab.tooling.student --out build $(NOTEBOOKS)

# The student versions the package ships (python -m vaelab.student_notebooks copies them
# out); run after editing a master: a test fails while they are behind.
student-notebooks: $(STAMP)
	$(PY) -m vaelab.tooling.student --ship $(SHIPPED) $(NOTEBOOKS)

# Every notebook's first code cell, installing vaelab from [tool.vaelab] install in
# pyproject.toml (the course's address); then the shipped student copies follow.
setup-cells: $(STAMP)
	$(PY) -m vaelab.tooling.setup_cell $(NOTEBOOKS)
	$(PY) -m vaelab.tooling.student --ship $(SHIPPED) $(NOTEBOOKS)

# The graders are installed first; the course folder ships the models notebook 04 trains (a
# first run trains them, later runs reuse them), and each notebook gets its own otter dist.
assign: $(STAMP) $(GRADING)
	$(PY) -m vaelab.tooling.assign --out build --project . --checkpoints $(NOTEBOOKS)
	@for nb in $(NOTEBOOKS); do stem=$$(basename $$nb .ipynb); \
		PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/otter assign \
			build/otter/$$stem/$$stem.ipynb build/otter/$$stem/dist >/dev/null || exit 1; \
		echo "$$stem: otter dist in build/otter/$$stem/dist"; done

grader-metadata: $(STAMP)
	$(PY) -m vaelab.tooling.assign --metadata $(NOTEBOOKS)

bench: $(STAMP)
	$(PY) -m vaelab.tooling.bench --out build/bench.json

# Notebook 06's numbers: the master's model and notebook 04's MLP graded with SEEDS seeds.
SEEDS ?= 3
capstone: $(STAMP)
	$(PY) -m vaelab.tooling.capstone --seeds $(SEEDS) --out build/capstone.json

# STAGES=8 is the full protocol (3280 epochs, a GPU job); REPRODUCE_ARGS passes more
# options, e.g. REPRODUCE_ARGS="--threads 1 --test-subset 1000" on a CPU.
STAGES ?= 8
REPRODUCE_ARGS ?=
reproduce: $(STAMP)
	$(PY) -m vaelab.tooling.reproduce --stages $(STAGES) $(REPRODUCE_ARGS)

e2e: $(STAMP)
	$(PY) -m pytest tests/e2e -m e2e

clean:
	rm -rf build
