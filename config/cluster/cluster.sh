#!/usr/bin/env bash
# The local three-node cluster of config/cluster/node-{1,2,3}.toml (`make cluster`,
# `make cluster-stop`, `make cluster-clean`):
#   cluster.sh start [BIN]   start every node not running, wait until all three serve Kafka
#                            clients (at most START_WAIT_S), print the bootstrap list
#   cluster.sh stop          SIGTERM each node, kill -9 what is left after STOP_WAIT_S
#   cluster.sh clean         stop, then delete /tmp/sluice-cluster (data, logs, pid files)
# Node N logs to /tmp/sluice-cluster/node-N.log; its pid is in node-N.pid.
set -euo pipefail

cd "$(dirname "$0")/../.."
DIR=/tmp/sluice-cluster
NODES=(1 2 3)
START_WAIT_S=${START_WAIT_S:-60}
STOP_WAIT_S=${STOP_WAIT_S:-15}

kafka_port() { echo "${1}9092"; } # as in node-N.toml
pid_of() { cat "$DIR/node-$1.pid" 2>/dev/null || true; }

# True if node $1's pid file names a live sluice process (not some process that reused the pid).
alive() {
	local pid
	pid=$(pid_of "$1")
	[ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q "sluice.*node-$1.toml"
}

accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

tails() {
	for n in "${NODES[@]}"; do
		echo "--- node $n ($DIR/node-$n.log, last 20 lines):"
		tail -n 20 "$DIR/node-$n.log" 2>/dev/null || echo "(no log)"
	done
}

start() {
	local bin=${1:-target/release/sluice}
	[ -x "$bin" ] || { echo "no sluice binary at $bin (make build)" >&2; exit 1; }
	mkdir -p "$DIR"
	for n in "${NODES[@]}"; do
		if alive "$n"; then
			echo "node $n already running (pid $(pid_of "$n"))"
			continue
		fi
		# All three start before any is waited for: a node opens its Kafka listener only once
		# a quorum (two of three voters) is up.
		"$bin" --config "config/cluster/node-$n.toml" >"$DIR/node-$n.log" 2>&1 &
		echo $! >"$DIR/node-$n.pid"
	done

	local deadline=$((SECONDS + START_WAIT_S)) waiting
	while :; do
		waiting=()
		for n in "${NODES[@]}"; do
			if ! alive "$n"; then
				echo "node $n exited while starting; stopping the others" >&2
				tails >&2
				stop >&2
				exit 1
			fi
			# The port is bound before the node is registered and unfenced; the log line says
			# it serves.
			{ accepts "$(kafka_port "$n")" && grep -q "sluice started" "$DIR/node-$n.log"; } || waiting+=("$n")
		done
		if [ ${#waiting[@]} -eq 0 ]; then
			break
		fi
		if [ $SECONDS -ge $deadline ]; then
			echo "node(s) ${waiting[*]} not accepting Kafka connections after ${START_WAIT_S}s (left running; make cluster-stop):" >&2
			tails >&2
			exit 1
		fi
		sleep 0.2
	done
	# Each node learns of the others' unfencing with the quorum's next heartbeat (~100 ms).
	sleep 0.5
	echo "cluster up; logs and pids in $DIR"
	echo "bootstrap: 127.0.0.1:19092,127.0.0.1:29092,127.0.0.1:39092"
}

stop() {
	local n pid deadline=$((SECONDS + STOP_WAIT_S)) left
	for n in "${NODES[@]}"; do
		if alive "$n"; then kill -TERM "$(pid_of "$n")" 2>/dev/null || true; fi
	done
	while :; do
		left=()
		for n in "${NODES[@]}"; do
			if alive "$n"; then left+=("$n"); fi
		done
		if [ ${#left[@]} -eq 0 ]; then
			break
		fi
		if [ $SECONDS -ge $deadline ]; then
			for n in "${left[@]}"; do
				echo "node $n still up ${STOP_WAIT_S}s after SIGTERM: kill -9"
				kill -KILL "$(pid_of "$n")" 2>/dev/null || true
			done
			break
		fi
		sleep 0.2
	done
	for n in "${NODES[@]}"; do rm -f "$DIR/node-$n.pid"; done
	echo "cluster stopped"
}

case "${1:-}" in
start) start "${2:-}" ;;
stop) stop ;;
clean) stop && rm -rf "$DIR" && echo "removed $DIR" ;;
*) echo "usage: $0 start [BIN] | stop | clean" >&2; exit 2 ;;
esac
