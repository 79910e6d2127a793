# `make demo` and `make test` set up everything a fresh Debian/Ubuntu machine needs, then run.
# The interpreter: the distribution's own /usr/bin/python3 when it is 3.11 or newer (and can make a venv: python3-venv
# is there, or make may install it as root), else python3 on the PATH; PYTHON=... picks another. Debian's python3.11,
# libpython linked into the binary, took ~7 % less CPU for the large first ingest than pyenv's default build (a shared
# libpython, no profile-guided optimisation; docs/benchmarks.md, round 23).
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in /usr/bin/python3 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || continue; \
	if [ $$p = /usr/bin/python3 ] && [ "$$(id -u)" != 0 ] && \
	  ! dpkg-query -W -f='$${Status}' python3-venv 2>/dev/null | grep -q 'ok installed'; then continue; fi; \
	echo $$p; exit; done; echo python3)
endif
VENV   ?= .venv
BIN    := $(VENV)/bin
# WeasyPrint's system libraries; poppler-utils gives pdftotext/pdftoppm for looking at packs.
# The distribution's python3 makes a venv only with python3-venv.
SYSTEM_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils \
	$(if $(filter /usr/bin/python3,$(PYTHON)),python3-venv)
# Only for `make test`: the dashboard's browser tests drive Debian's chromium headless through
# playwright (`playwright install` downloads a browser of its own and is never used); the store
# tests start a throw-away PostgreSQL server from Debian's binaries (tests/pgserver.py).
TEST_SYSTEM_PACKAGES := chromium postgresql

.PHONY: demo test bench system-deps test-system-deps venv clean

demo: venv
	$(BIN)/pimtrail demo --out pimtrail-demo

test: venv test-system-deps
	$(BIN)/pytest -q

# Benchmarks at large-tenant size (issue 7; docs/benchmarks.md): one table, and bench/results.json.
# About 5 minutes on 2 cores; BENCH_ARGS passes options, e.g. BENCH_ARGS="--repeat 1".
bench: venv
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# $(call apt_install,PACKAGES): install the Debian packages that are missing (as root), else say how.
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing system packages: $$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "Missing system packages: $$missing"; \
	    echo "Run: sudo apt-get install --no-install-recommends $$missing"; exit 1; \
	  fi; \
	fi
endef

system-deps:
	$(call apt_install,$(SYSTEM_PACKAGES))

test-system-deps:
	$(call apt_install,$(TEST_SYSTEM_PACKAGES))

$(BIN)/pimtrail: pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: system-deps $(BIN)/pimtrail

clean:
	rm -rf $(VENV) pimtrail-demo build dist *.egg-info
