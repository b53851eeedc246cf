#!/usr/bin/env bash
# Most connections from one process: `tether sim` against a local mosquitto,
# next to the many-connections figures of libmosquitto's own loop and of
# tether's client bench (bench/mqtt_bench.c) against the same broker.
#
#   bench/sim_conns.sh [connections]      (default: the open-file limit - 1000)
#
# The simulator spreads its connections over 127.0.0.2-127.0.0.9 (each source
# address has its own ~28,000 ephemeral ports, and ports left in TIME_WAIT by
# earlier runs do not count against it), publishes one QoS 1 message per
# device every 10 s for 30 s and prints connections/s, connect latency, the
# end-to-end latency and its memory per connection (report: $TT_OUT/sim-conns.html).
# The peers only connect.
# Environment: TT_OUT (default ./out), TT_JOBS (default 2).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${TT_OUT:-$here/out}
build=$out/bench-sim
jobs=${TT_JOBS:-2}

log() { printf '==> %s\n' "$*" >&2; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
n=${1:-$(( $(ulimit -n) - 1000 ))}

log "building in $build"
if ! { cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTT_BUILD_BENCH=ON -DTT_BUILD_TESTS=OFF \
         -DTT_BUILD_EXAMPLES=OFF &&
       cmake --build "$build" -j "$jobs" --target tether_cli mqtt_bench mosq_bench; } >"$build.log" 2>&1; then
    grep -E -B2 -A6 'error|Error' "$build.log" | head -40 >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tt-sim-bench-XXXXXX")
broker_pid=
cleanup() {
    [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 12000))
    port_busy "$port" || break
done
{
    [ "$(id -u)" = 0 ] && echo "user root"
    echo "listener $port 127.0.0.1"
    echo "allow_anonymous true"
    echo "persistence false"
    echo "max_queued_messages 0"
    echo "set_tcp_nodelay true"
    echo "log_dest file $tmp/mosquitto.log"
    echo "log_type error"
} >"$tmp/mosquitto.conf"
mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
"$mosq" -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.out" 2>&1 &
broker_pid=$!
for _ in $(seq 100); do port_busy "$port" && break; sleep 0.05; done
log "mosquitto on 127.0.0.1:$port, $n connections, open-file limit $(ulimit -n)"

log "tether sim"
"$build/tools/tether" sim -h 127.0.0.1 -p "$port" -n "$n" --connect-rate 0 --handshakes 256 \
    --rate 0.1 --duration 30 -q 1 --source-addr 127.0.0.2-127.0.0.9 --interval 10 -o "$out/sim-conns"
sleep 2
log "libmosquitto (its own loop), connections only"
"$build/bench/mosq_bench" -h 127.0.0.1 -p "$port" -s conns -c "$n" -k 100 -T 180 | grep RESULT || true
sleep 2
log "tether client bench, connections only (one source address)"
"$build/bench/mqtt_bench" -h 127.0.0.1 -p "$port" -s conns -c "$n" -k 100 -T 180 | grep RESULT || true
