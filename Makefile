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
test: test-deps lint unit compat fuzz-smoke

# kcat and openssl from Debian; confluent-kafka, kafka-python and pytest from PyPI into a local venv;
# kafkajs from npm (needs node and npm) into compat-tests/kafkajs/node_modules; Apache Kafka's
# jars from Maven Central (test-deps-java); franz-go from the Go module proxy (test-deps-go).
test-deps: test-deps-python test-deps-java test-deps-go

test-deps-python:
	@command -v kcat >/dev/null 2>&1 || { \
		echo "installing kcat"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq kcat >/dev/null; }
	@command -v openssl >/dev/null 2>&1 || { \
		echo "installing openssl (test_security.py makes its certificates with it)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq openssl >/dev/null; }
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check -r compat-tests/requirements.txt
	@if [ ! -d compat-tests/kafkajs/node_modules ] || [ compat-tests/kafkajs/package-lock.json -nt compat-tests/kafkajs/node_modules ]; then \
		cd compat-tests/kafkajs && npm ci --no-audit --no-fund --silent; fi

# Apache Kafka 4.x (broker, tools, clients, streams) resolved by Maven into
# compat-tests/.kafka/<version>/lib, once; compat-tests/kafka-tool runs any of its tools.
# Then the Java client scenarios (compat-tests/java, kafka-clients and kafka-streams 4.4.0)
# built into compat-tests/java/target/java-compat.jar, only when pom.xml or a source is newer
# than the jar: a second run downloads and builds nothing.
test-deps-java:
	@command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1 || { \
		echo "installing Java 17 and Maven"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq openjdk-17-jdk-headless maven >/dev/null; }
	@compat-tests/kafka/resolve.sh >/dev/null
	@jar=compat-tests/java/target/java-compat.jar; \
	if [ ! -f $$jar ] || [ -n "$$(find compat-tests/java/pom.xml compat-tests/java/src -newer $$jar -print -quit)" ]; then \
		echo "building $$jar (Kafka's Java client and Streams from Maven Central)"; \
		started=$$(mktemp); \
		out=$$(cd compat-tests/java && mvn -q -B package -DskipTests 2>&1) || { echo "$$out"; rm -f $$started; exit 1; }; \
		touch -r $$started $$jar; rm -f $$started; fi

# franz-go (kgo, kadm) from the Go module proxy (versions pinned by compat-tests/go/go.sum),
# built into compat-tests/go/bin/franz-compat only when its sources changed: a second run
# downloads and builds nothing. Needs Go (on PATH or in /usr/local/go/bin).
GO ?= $(shell command -v go 2>/dev/null || { [ -x /usr/local/go/bin/go ] && echo /usr/local/go/bin/go; })
FRANZ_BIN := compat-tests/go/bin/franz-compat
FRANZ_SRC := $(wildcard compat-tests/go/*.go) compat-tests/go/go.mod compat-tests/go/go.sum

test-deps-go: $(FRANZ_BIN)

$(FRANZ_BIN): $(FRANZ_SRC)
	@[ -n "$(GO)" ] || { echo "go not found on PATH nor in /usr/local/go/bin: install Go (https://go.dev/dl/) to build the franz-go tests in compat-tests/go" >&2; exit 1; }
	@echo "building $@ (franz-go from the Go module proxy)"
	@cd compat-tests/go && $(GO) mod download && $(GO) build -buildvcs=false -o bin/franz-compat .
	@touch $@

# Fuzzing (fuzz/README.md): cargo fuzz on nightly Rust (preinstalled with rustup here). The
# smoke run is part of `make test`; the long run is `make fuzz FUZZ_SECONDS=1800`.
FUZZ_TARGETS := request record_batches decompress group_blobs controller_message
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_SECONDS ?= 1800
FUZZ_FLAGS := -rss_limit_mb=2048 -timeout=10

.PHONY: fuzz-deps fuzz-smoke fuzz fuzz-run
fuzz-deps:
	@rustup run nightly rustc --version >/dev/null 2>&1 || { echo "fuzzing needs the nightly toolchain (rustup toolchain install nightly)" >&2; exit 1; }
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked --quiet

fuzz-smoke: fuzz-deps
	@$(MAKE) --no-print-directory fuzz-run FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS)

fuzz: fuzz-deps
	@$(MAKE) --no-print-directory fuzz-run

# Each target in turn for FUZZ_SECONDS from its corpus and seeds; a crash, a leak past the RSS
# limit or a timeout stops the run with the tail of libFuzzer's log (the input is in fuzz/artifacts).
fuzz-run:
	cd fuzz && $(CARGO) +nightly fuzz build -O
	@cd fuzz && for t in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$t; \
		$(CARGO) +nightly fuzz run -O $$t corpus/$$t seeds/$$t -- $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SECONDS) 2>fuzz-$$t.log \
			|| { tail -40 fuzz-$$t.log; exit 1; }; \
		echo "$$t: $$(grep -E '^#[0-9]+[[:space:]]+DONE' fuzz-$$t.log | tail -1)"; \
	done

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

# Benchmarks (see bench/README.md): a load generator on librdkafka, its own Cargo package in
# bench/ (never built by `make test`), and Kafka's own perf tools as a second one. Starts a
# release sluice, then Apache Kafka 4.4.0 (compat-tests/kafka-tool), each on a temp data dir,
# one after the other, and writes the comparison to bench/results/; or uses one running broker:
# `make bench BOOTSTRAP=host:port [BROKER_PID=pid]`. BENCH_ARGS adds flags, e.g. --quick or
# --brokers sluice. Installs what the librdkafka build, the TCP ceiling, the plot and Kafka
# (Java 17, Maven) need from Debian if missing.
.PHONY: bench
bench: $(if $(BOOTSTRAP),,build)
	@missing=""; \
	for t in cmake:cmake c++:g++ make:make iperf3:iperf3 java:openjdk-17-jdk-headless mvn:maven; do \
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

# The same beside three-node clusters (issue 12; see bench/README.md): every broker as one node,
# then as three nodes on this machine (each broker and controller), topics with replication
# factor 3 and min.insync.replicas=2; 1 KB produce at acks=1 and acks=all, end-to-end latency
# at a fixed rate with acks=all, and Sluice's follower lag. About 15 minutes with Kafka; results
# in bench/results/cluster/. BENCH_ARGS adds flags, e.g. --brokers sluice.
BENCH_CLUSTER_ARGS := --cluster 3 --workloads produce,latency \
	--variants "1KB acks=1 none unkeyed,1KB acks=all none unkeyed" --duration-secs 5 \
	--latency-acks all --latency-rate 10000 --latency-secs 30 --retries 1 --out results/cluster
.PHONY: bench-cluster
bench-cluster:
	$(MAKE) bench BENCH_ARGS='$(BENCH_CLUSTER_ARGS) $(BENCH_ARGS)'

# Replication soak (issue 12): compat-tests/test_replication.py SOAK_RUNS times in a row (20 by
# default, each run a few minutes), stopping at the first failing run with the tail of its
# output; every run's output is kept in target/replication-soak/run-N.log.
SOAK_RUNS ?= 20
SOAK_DIR := target/replication-soak
.PHONY: replication-soak
replication-soak: build test-deps-python
	@mkdir -p $(SOAK_DIR); \
	for i in $$(seq 1 $(SOAK_RUNS)); do \
		log=$(SOAK_DIR)/run-$$i.log; \
		if SLUICE_BIN=$(abspath $(SLUICE_BIN)) $(VENV)/bin/python -m pytest -q -p no:cacheprovider \
			compat-tests/test_replication.py >$$log 2>&1; then \
			echo "replication soak: run $$i of $(SOAK_RUNS): $$(tail -1 $$log)"; \
		else \
			tail -80 $$log; echo "replication soak: run $$i of $(SOAK_RUNS) failed; its output: $$log"; exit 1; \
		fi; \
	done
