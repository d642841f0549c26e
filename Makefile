# The two set-up commands of the README. Each installs what it needs on a fresh Debian machine, then runs.
#   make train   install juanji + Fashion-MNIST, train LeNet-5 (the main job)
#   make test    install juanji + test tools (PyTorch CPU, hypothesis) + Fashion-MNIST, run every test
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTHON ?= python3

.PHONY: train test data

# Fashion-MNIST for the image models; Debian's word lists for the text CNN's word-language task; a CJK font
# for the Chinese labels of the docs' figures (docs/figures/make_figures.py); chromium for the browser tests of
# `juanji serve` and of the tutorial site (Playwright drives it; no browser is downloaded).
DATA_PACKAGES := dataset-fashion-mnist wamerican wngerman wfrench wspanish witalian fonts-wqy-zenhei chromium

data:
	@dpkg -s $(DATA_PACKAGES) >/dev/null 2>&1 || \
	  $(SUDO) apt-get install -y $(DATA_PACKAGES) || \
	  ($(SUDO) apt-get update && $(SUDO) apt-get install -y $(DATA_PACKAGES))

train: data
	$(PYTHON) -m pip install -q -e ".[cli]"
	juanji train

test: data
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(PYTHON) -m pip install -q -e ".[test]"
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(PYTHON) -m pytest

