# The two set-up commands of the README. Each installs what it needs on a fresh Debian machine, then runs.
#   make train   install juanji + Fashion-MNIST, train LeNet-5 (the main job)
#   make test    install juanji + test tools (PyTorch CPU, hypothesis) + Fashion-MNIST, run every test
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTHON ?= python3

.PHONY: train test data test-packages

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

train: data
	$(PYTHON) -m pip install -q -e ".[cli]"
	juanji train

test: test-packages
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(PYTHON) -m pip install -q -e ".[test]"
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(PYTHON) -m pytest

