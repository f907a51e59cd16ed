# NASWeb: `make run` sets everything up and serves the dashboard; `make test` runs the test suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed

.PHONY: run test venv lint sandbox-tool

venv: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

# User code runs only inside bubblewrap (README, "User code"); install it when we may (root), else say how.
sandbox-tool:
	@command -v bwrap >/dev/null || [ "$${NASWEB_SANDBOX:-bwrap}" = none ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing bubblewrap (the sandbox for user code)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	  else \
	    echo "bubblewrap (bwrap) is missing: workers refuse to run user code without it."; \
	    echo "Install it (sudo apt-get install bubblewrap), or for development only set NASWEB_SANDBOX=none."; \
	    exit 1; \
	  fi; }

run: $(STAMP) sandbox-tool
	$(BIN)/python -m nasweb.serve

test: $(STAMP) sandbox-tool
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m mypy nastune
