# The two set-up commands of the README. Each installs what it needs on a fresh Debian or Ubuntu machine, into a
# virtual environment of the project's own (.venv), then runs:
#   make train   Fashion-MNIST + juanji, then train LeNet-5 (the main job)
#   make test    + the test tools (PyTorch CPU, hypothesis, Chromium, Open MPI...), then run every test
#   make shell   a shell with .venv activated, for the commands that follow (or call .venv/bin/juanji)
# The environment is made by the system's own python3 (PEP 668 forbids pip outside one on Debian 12+ and
# Ubuntu 23.04+); PYTHON=python3.12 picks another interpreter.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTHON ?= python3
VENV := .venv
# Commands run with the environment's bin/ first on PATH, as after `source .venv/bin/activate`: the tests
# start `juanji`, `mpirun ... python` and the like as a user would.
RUN := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" VIRTUAL_ENV="$(CURDIR)/$(VENV)" PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

.PHONY: train test shell data test-packages

# Fashion-MNIST for the image models; Debian's word lists for the text CNN's word-language task.
DATA_PACKAGES := dataset-fashion-mnist wamerican wngerman wfrench wspanish witalian
# What only the tests need: a CJK font for the Chinese labels of the docs' figures
# (docs/figures/make_figures.py); chromium for the browser tests of `juanji serve` and of the tutorial site
# (Playwright drives it; no browser is downloaded); Open MPI for data-parallel training (mpirun, and the
# library mpi4py builds against).
TEST_PACKAGES := $(DATA_PACKAGES) fonts-wqy-zenhei chromium openmpi-bin libopenmpi-dev

define apt_install
	@dpkg -s $(1) >/dev/null 2>&1 || \
	  $(SUDO) apt-get install -y $(1) || \
	  ($(SUDO) apt-get update && $(SUDO) apt-get install -y $(1))
endef

data:
	$(call apt_install,$(DATA_PACKAGES))

test-packages:
	$(call apt_install,$(TEST_PACKAGES))

# Debian and Ubuntu ship venv's pip bootstrap apart (python3.X-venv): without it `python3 -m venv` fails, and
# the package for this interpreter's version is installed before the second try.
$(VENV)/bin/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { rm -rf $(VENV); \
	  package=$$($(PYTHON) -c 'import sys; print(f"python3.{sys.version_info[1]}-venv")'); \
	  $(SUDO) apt-get install -y $$package || ($(SUDO) apt-get update && $(SUDO) apt-get install -y $$package); \
	  $(PYTHON) -m venv $(VENV); }
	@echo "made $(VENV) with $$($(VENV)/bin/python --version)"

train: data $(VENV)/bin/python
	$(RUN) python -m pip install -q -e ".[cli]"
	$(RUN) juanji train

test: test-packages $(VENV)/bin/python
	$(RUN) python -m pip install -q -e ".[test]"
	$(RUN) python -m pytest

shell: $(VENV)/bin/python
	@echo "juanji's environment ($(VENV)); exit to leave"
	@$(RUN) $${SHELL:-bash} -i
