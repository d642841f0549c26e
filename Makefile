# The two set-up commands of the README. Each installs what it needs on a fresh Debian machine, then runs.
#   make train   install juanji + Fashion-MNIST, train LeNet-5 (the main job)
#   make test    install juanji + test tools (PyTorch CPU, hypothesis) + Fashion-MNIST, run every test
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTHON ?= python3

.PHONY: train test data

data:
	@test -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz || \
	  $(SUDO) apt-get install -y dataset-fashion-mnist || \
	  ($(SUDO) apt-get update && $(SUDO) apt-get install -y dataset-fashion-mnist)

train: data
	$(PYTHON) -m pip install -q -e ".[cli]"
	juanji train

test: data
	$(PYTHON) -m pip install -q -e ".[test]"
	$(PYTHON) -m pytest

