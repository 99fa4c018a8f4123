# Two commands on a fresh Debian bookworm machine (as root, or with sudo):
#   make run   install what is missing, then start Orthanc with the plugin (foreground)
#   make test  install what is missing, then lint and run the whole test suite
# Both are idempotent: with everything installed they go straight to work.
# Backup and restore (README, "Backup and restore"; ORTHANC__... variables apply, as to make run):
#   make backup BACKUP=<folder>   a consistent copy of Orthanc's index and storage and our
#                                 database, taken while the server runs (or not)
#   make restore BACKUP=<folder>  that copy put into the empty data folder orthanc.json names

SHELL := /bin/bash
PYTHON := /usr/bin/python3
VENV := .venv
# npm only fetches the viewer; a machine with Node.js from elsewhere already has it.
DEBIAN_PACKAGES := orthanc orthanc-python orthanc-dicomweb orthanc-postgresql libpq5 dcmtk \
	python3-venv orthanc-dev gcc libc6-dev fonts-dejavu-core $(if $(shell command -v npm),,npm)
TEST_DEBIAN_PACKAGES := chromium dicom3tools systemd postgresql-15 prometheus
# The viewer: OHIF's published build from npm, rebased to /ohif/ (see ohif/install.py).
OHIF_VERSION := 3.13.2
VIEWER := ohif/dist/.installed-$(OHIF_VERSION)
# Two small C plugins: one hands STOW-RS to the Python plugin (plugin/native/route_claims.c),
# one refuses requests that are not UTF-8 before the Python plugin fails on them (uri_guard.c).
ROUTE_CLAIMS := build/libHounsfieldRouteClaims.so
URI_GUARD := build/libHounsfieldUriGuard.so
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: run test lint install service scale-out system-packages test-system-packages \
	backup restore

run: install
	PYTHONPATH=plugin exec $(VENV)/bin/python -m hounsfield.launcher orthanc.json

# Several instances on a throwaway PostgreSQL, for trying them out (README, "Several
# instances"): make scale-out INSTANCES=3
INSTANCES := 2
scale-out: install
	@$(call apt-install,postgresql-15)
	PYTHONPATH=plugin exec $(VENV)/bin/python -m hounsfield.scale_out orthanc.json \
	  --instances $(INSTANCES)

# Exit status 0 done, 1 failed, 2 refused with nothing written (python -m hounsfield.backup -h).
backup: $(VENV)/.installed
	$(require-backup)
	PYTHONPATH=plugin $(VENV)/bin/python -m hounsfield.backup create orthanc.json "$(BACKUP)"

restore: $(VENV)/.installed
	$(require-backup)
	PYTHONPATH=plugin $(VENV)/bin/python -m hounsfield.backup restore "$(BACKUP)" orthanc.json

define require-backup
@test -n "$(BACKUP)" || { echo "make $@: say where: make $@ BACKUP=<folder>" >&2; exit 2; }
endef

test: install test-system-packages $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

# Run under systemd, restarted when it dies (systemd/hounsfield.service).
service: install
	sed "s|@REPOSITORY@|$(CURDIR)|g" systemd/hounsfield.service \
	  | $(SUDO) tee /etc/systemd/system/hounsfield.service >/dev/null
	$(SUDO) systemctl daemon-reload
	$(SUDO) systemctl enable --now hounsfield

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .

install: system-packages $(VENV)/.installed $(VIEWER) $(ROUTE_CLAIMS) $(URI_GUARD)

system-packages:
	@$(call apt-install,$(DEBIAN_PACKAGES))

# Pages are tested in Debian's Chromium (driven by Playwright; no browser download);
# CT series are validated with dciodvfy (dicom3tools); the systemd unit with systemd-analyze;
# the PostgreSQL backend and several instances against a throwaway PostgreSQL 15 cluster;
# the monitoring setup (monitoring/) with a real Prometheus scraping a test server, and promtool.
test-system-packages:
	@$(call apt-install,$(TEST_DEBIAN_PACKAGES))

# Install the Debian packages among $(1) that are missing. Debian's orthanc package starts
# and enables a system service on ports 8042/4242; this project's server is `make run`,
# so the service is kept from starting and disabled. So is Debian's prometheus service
# (port 9090): the tests start their own Prometheus, and monitoring/ runs one in compose.
define apt-install
	missing=$$(for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:" $$missing; \
	  policy=/usr/sbin/policy-rc.d; made_policy=; \
	  if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee $$policy >/dev/null \
	    && $(SUDO) chmod +x $$policy && made_policy=1; fi; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	  status=$$?; [ -n "$$made_policy" ] && $(SUDO) rm -f $$policy; \
	  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then \
	    for unit in orthanc prometheus; do \
	      $(SUDO) systemctl disable --now $$unit >/dev/null 2>&1 || true; done; fi; \
	  exit $$status; \
	fi
endef

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

define native_plugin
	mkdir -p $(dir $@)
	gcc -shared -fPIC -O2 -Wall -Wextra -Werror -o $@ $<
endef

$(ROUTE_CLAIMS): plugin/native/route_claims.c
	$(native_plugin)

$(URI_GUARD): plugin/native/uri_guard.c
	$(native_plugin)

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.installed
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(VIEWER): ohif/install.py ohif/app-config.js
	scratch=$$(mktemp -d) && \
	  (cd $$scratch && npm pack --silent @ohif/app@$(OHIF_VERSION) >/dev/null) && \
	  $(PYTHON) ohif/install.py $$scratch/ohif-app-$(OHIF_VERSION).tgz ohif/dist; \
	  status=$$?; rm -rf $$scratch; [ $$status -eq 0 ] && touch $@
