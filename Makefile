# Sluice — see README.md. `make run` starts a node; `make test` installs what the tests need
# and runs every test, the compatibility tests with real Kafka clients included.

CARGO ?= cargo
PYTHON ?= python3
VENV := compat-tests/.venv
SLUICE_BIN := target/release/sluice

.PHONY: all build run test test-deps unit compat lint fmt clean

all: build

build:
	$(CARGO) build --release

run: build
	$(SLUICE_BIN) --config config/sluice.toml

# Everything CI runs: lints, unit and integration tests, then real clients against the binary.
test: test-deps lint unit compat

# kcat from Debian; confluent-kafka, kafka-python and pytest from PyPI into a local venv.
test-deps:
	@command -v kcat >/dev/null 2>&1 || { \
		echo "installing kcat"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq kcat >/dev/null; }
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check -r compat-tests/requirements.txt

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test

compat: build
	SLUICE_BIN=$(abspath $(SLUICE_BIN)) $(VENV)/bin/python -m pytest -q compat-tests

fmt:
	$(CARGO) fmt

clean:
	$(CARGO) clean
	rm -rf $(VENV)
