# Sluice — see README.md. `make run` starts a node; `make test` installs what the tests need
# and runs every test, the compatibility tests with real Kafka clients included.

CARGO ?= cargo
PYTHON ?= python3
VENV := compat-tests/.venv
SLUICE_BIN := target/release/sluice

.PHONY: all build run test test-deps test-deps-python test-deps-java test-deps-go unit compat lint fmt clean cluster cluster-stop cluster-clean

all: build

build:
	$(CARGO) build --release

run: build
	$(SLUICE_BIN) --config config/sluice.toml

# A local three-node cluster (config/cluster/node-{1,2,3}.toml, each broker and controller) in
# the background: logs, pid files and data under /tmp/sluice-cluster. `make cluster` returns once
# all three Kafka ports accept and prints the bootstrap list.
cluster: build
	bash config/cluster/cluster.sh start $(SLUICE_BIN)

cluster-stop:
	bash config/cluster/cluster.sh stop

cluster-clean:
	bash config/cluster/cluster.sh clean

# Everything CI runs: lints, unit and integration tests, then real clients against the binary.
test: test-deps lint unit compat

# kcat from Debian; confluent-kafka, kafka-python and pytest from PyPI into a local venv;
# kafkajs from npm (needs node and npm) into compat-tests/kafkajs/node_modules; Apache Kafka's
# jars from Maven Central (test-deps-java); franz-go from the Go module proxy (test-deps-go).
test-deps: test-deps-python test-deps-java test-deps-go

test-deps-python:
	@command -v kcat >/dev/null 2>&1 || { \
		echo "installing kcat"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq kcat >/dev/null; }
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check -r compat-tests/requirements.txt
	@if [ ! -d compat-tests/kafkajs/node_modules ] || [ compat-tests/kafkajs/package-lock.json -nt compat-tests/kafkajs/node_modules ]; then \
		cd compat-tests/kafkajs && npm ci --no-audit --no-fund --silent; fi

# Apache Kafka 4.x (broker, tools, clients, streams) resolved by Maven into
# compat-tests/.kafka/<version>/lib, once; compat-tests/kafka-tool runs any of its tools.
test-deps-java:
	@command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1 || { \
		echo "installing Java 17 and Maven"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq openjdk-17-jdk-headless maven >/dev/null; }
	@compat-tests/kafka/resolve.sh >/dev/null

# franz-go (kgo, kadm) from the Go module proxy, built into compat-tests/go/.
test-deps-go:

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

# Benchmarks (issue 5; see bench/README.md): a librdkafka load generator, its own Cargo package
# in bench/ (never built by `make test`). Starts a release sluice on a temp data dir, or uses
# `make bench BOOTSTRAP=host:port [BROKER_PID=pid]`. BENCH_ARGS adds flags, e.g. --quick.
# Installs what the librdkafka build, the TCP ceiling and the plot need from Debian if missing.
.PHONY: bench
bench: $(if $(BOOTSTRAP),,build)
	@missing=""; \
	for t in cmake:cmake c++:g++ make:make iperf3:iperf3; do \
		command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; done; \
	[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$$missing fonts-dejavu-core"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; fi
	$(CARGO) build --release -j 2 --manifest-path bench/Cargo.toml
	cd bench && ./target/release/sluice-bench --out results \
		$(if $(BOOTSTRAP),--bootstrap $(BOOTSTRAP) $(if $(BROKER_PID),--broker-pid $(BROKER_PID)),--sluice-bin $(abspath $(SLUICE_BIN))) \
		$(BENCH_ARGS)
