# Two commands: `make run` (the daemon on the shipped registry) and `make test` (the suite).
# Both set everything up on a fresh machine: a virtualenv with the package and its tools.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config/channels.yaml

.PHONY: setup system test lint run check validate clean bench bench-browser demo

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# Debian packages the tests run for real (promtool, prometheus); root or sudo, once.
system:
	bash scripts/setup-system.sh

lint: $(STAMP)
	$(BIN)/ruff check monitor tests scripts bench

test: lint system
	$(BIN)/python -m pytest

validate: $(STAMP)
	$(BIN)/contact-monitor validate --config $(CONFIG)

check: $(STAMP)
	$(BIN)/contact-monitor check --config $(CONFIG)

run: $(STAMP)
	$(BIN)/contact-monitor run --config $(CONFIG)

# Every state at once, offline: loopback pages and servers, a generated registry.
demo: $(STAMP)
	$(BIN)/contact-monitor demo

# The benchmark (about 15 minutes): nginx, dnsmasq and blackbox_exporter from Debian.
bench: $(STAMP)
	bash scripts/setup-system.sh --bench
	cd bench && ../$(BIN)/python run.py
	$(BIN)/python bench/sip_call.py  # CPU and memory per SIP test call (kamailio, sipp)

# The cost of a rendered check (`render: browser`), one run of about a minute.
bench-browser: $(STAMP)
	bash scripts/setup-system.sh
	cd bench && ../$(BIN)/python browser.py

clean:

	rm -rf $(VENV) .pytest_cache .ruff_cache
