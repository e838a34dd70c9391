#!/usr/bin/env bash
# The TLS partial run of bench/README.md ("TLS: a partial run"), until the harness has SSL
# workloads: Sluice (release) and Kafka 4.4.0, one node each, both with a PLAINTEXT and an SSL
# listener and the same throwaway PEM keystore; librdkafka (confluent-kafka) and Kafka's perf
# tools produce then consume N 1 KiB records over each; prints MB/s and the broker's CPU seconds.
#
#   bench/tls/run.sh [N]        # from the repository root; N defaults to 300000
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-300000}
py=$root/compat-tests/.venv/bin/python
kt=$root/compat-tests/kafka-tool
jvm="-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true"
dir=$(mktemp -d /tmp/sluice-tls-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 2; rm -rf "$dir"; }
trap cleanup EXIT
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Certificates as compat-tests/test_security.py makes them.
(
  cd "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >ext.cnf
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
    -extfile ext.cnf 2>/dev/null
  cat server.key server.pem >keystore.pem
  printf 'security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location=%s/ca.pem\n' "$dir" >SSL.properties
  printf 'security.protocol=PLAINTEXT\n' >PLAINTEXT.properties
)

wait_port() { for _ in $(seq 120); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 1; done; echo "port $1 never opened" >&2; exit 1; }
cpu() { awk '{printf "%.2f", ($14+$15)/100}' "/proc/$1/stat"; }

# run BROKER PID PLAINTEXT_PORT SSL_PORT
run() {
  local name=$1 pid=$2
  for proto in PLAINTEXT SSL; do
    local port; port=$([ $proto = SSL ] && echo "$4" || echo "$3")
    local b="127.0.0.1:$port" c0 topic
    c0=$(cpu "$pid")
    SSL_CA="$dir/ca.pem" "$py" "$root/bench/tls/librdkafka_run.py" "$b" $proto "$n" | sed "s/^/$name /"
    echo "$name $proto librdkafka broker CPU $(echo "$(cpu "$pid") - $c0" | bc) s"
    c0=$(cpu "$pid"); topic=perf-$RANDOM$RANDOM
    export KAFKA_HEAP_OPTS=-Xmx512M KAFKA_JVM_PERFORMANCE_OPTS="$jvm"
    "$kt" kafka-topics --bootstrap-server "$b" --command-config "$dir/$proto.properties" --create \
      --topic $topic --partitions 8 --replication-factor 1 >/dev/null
    "$kt" kafka-producer-perf-test --topic $topic --num-records "$n" --record-size 1024 --throughput -1 \
      --producer.config "$dir/$proto.properties" --producer-props bootstrap.servers="$b" acks=1 2>&1 |
      tail -1 | sed "s/^/$name $proto java produce: /"
    "$kt" kafka-consumer-perf-test --bootstrap-server "$b" --topic $topic --messages "$n" \
      --command-config "$dir/$proto.properties" --timeout 60000 2>&1 | tail -1 | sed "s/^/$name $proto java fetch: /"
    echo "$name $proto java broker CPU $(echo "$(cpu "$pid") - $c0" | bc) s"
  done
}

# Sluice.
sp=$(free_port) ss=$(free_port) sm=$(free_port)
mkdir "$dir/sluice"
"$root/target/release/sluice" --override "listeners=PLAINTEXT://127.0.0.1:$sp,SSL://127.0.0.1:$ss" \
  --override "log.dirs=$dir/sluice" --override "ssl.keystore.location=$dir/keystore.pem" \
  --override "metrics.listener=127.0.0.1:$sm" --override num.partitions=8 \
  --override log.segment.bytes=1073741824 --override group.initial.rebalance.delay.ms=0 \
  >"$dir/sluice.log" 2>&1 &
pids+=($!)
wait_port "$ss"
run Sluice "${pids[-1]}" "$sp" "$ss"
kill "${pids[-1]}"

# Kafka 4.4.0.
kp=$(free_port) ks=$(free_port) kc=$(free_port)
cat >"$dir/kafka.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$kc
listeners=PLAINTEXT://127.0.0.1:$kp,SSL://127.0.0.1:$ks,CONTROLLER://127.0.0.1:$kc
advertised.listeners=PLAINTEXT://127.0.0.1:$kp,SSL://127.0.0.1:$ks
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:PLAINTEXT
log.dirs=$dir/kafka
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
ssl.keystore.type=PEM
ssl.keystore.location=$dir/keystore.pem
num.partitions=8
log.segment.bytes=1073741824
group.initial.rebalance.delay.ms=0
PROPS
KAFKA_HEAP_OPTS=-Xmx256M "$kt" kafka-storage format --config "$dir/kafka.properties" \
  --cluster-id AAAAAAAAAAAAAAAAAAAAAA >/dev/null 2>&1
KAFKA_HEAP_OPTS="-Xmx1G -Xms1G" KAFKA_JVM_PERFORMANCE_OPTS="$jvm" "$kt" kafka-server-start \
  "$dir/kafka.properties" >"$dir/kafka.log" 2>&1 &
pids+=($!)
wait_port "$ks"
run Kafka "${pids[-1]}" "$kp" "$ks"
