# `make demo` and `make test` set up everything a fresh Debian/Ubuntu machine needs, then run.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# WeasyPrint's system libraries; poppler-utils gives pdftotext/pdftoppm for looking at packs.
SYSTEM_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils

.PHONY: demo test system-deps venv clean

demo: venv
	$(BIN)/pimtrail demo --out pimtrail-demo

test: venv
	$(BIN)/pytest -q

system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
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

$(BIN)/pimtrail: pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: system-deps $(BIN)/pimtrail

clean:
	rm -rf $(VENV) pimtrail-demo build dist *.egg-info
