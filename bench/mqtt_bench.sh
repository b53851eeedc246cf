#!/usr/bin/env bash
# MQTT side by side: tether, libmosquitto and Paho MQTT C against ONE local
# mosquitto, in one run, as a table with ratios.
#
#   bench/mqtt_bench.sh [--quick] [--runs N] [--no-callgrind] [--only CLIENTS]
#
# Builds bench/mqtt.cmake's programs (Release) in $TT_OUT/bench-mqtt, starts
# mosquitto on a free loopback port with a benchmarking config, runs every
# scenario for every client (--runs times, default 3, median reported), then
# counts user-space instructions per QoS 0 publish with callgrind:
# (I(2N) - I(N)) / N over a publisher-only run, so start-up cancels out.
# Until tether's client builds, its column shows n/a.
#
# Environment: TT_OUT (default ./out), TT_JOBS (build jobs, default 2),
# TT_BENCH_CONNS (connections for the per-connection figures, default 5000),
# TT_BENCH_MAX_CONNS (the most-connections run, default: the open-file limit
# minus 500, since the broker needs one descriptor per connection too).
# Needs: cmake, mosquitto, libmosquitto-dev, libpaho-mqtt-dev, valgrind.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${TT_OUT:-$here/out}
build=$out/bench-mqtt
jobs=${TT_JOBS:-2}
runs=3
quick=0
callgrind=1
only="mosq paho tether"

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1; runs=1 ;;
        --runs) runs=$2; shift ;;
        --no-callgrind) callgrind=0 ;;
        --only) only=$2; shift ;;
        *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
    shift
done

if [ $quick = 1 ]; then
    n_qos0=100000 n_qos1=20000 n_rtt=2000 cg_n=2000
    conns=${TT_BENCH_CONNS:-1000}
else
    n_qos0=1000000 n_qos1=200000 n_rtt=20000 cg_n=20000
    conns=${TT_BENCH_CONNS:-5000}
fi

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'mqtt_bench: %s\n' "$*" >&2; exit 1; }

# ---- build ------------------------------------------------------------------
mkdir -p "$out"
log "building in $build"
if ! { cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTT_BUILD_BENCH=ON \
         -DTT_BUILD_TESTS=OFF -DTT_BUILD_TOOLS=OFF -DTT_BUILD_EXAMPLES=OFF &&
       cmake --build "$build" -j "$jobs" --target mosq_bench paho_bench; } >"$build.log" 2>&1; then
    grep -E -B2 -A6 'error|Error' "$build.log" | head -40 >&2
    die "build failed; log: $build.log"
fi
declare -A bin=([mosq]=$build/bench/mosq_bench [paho]=$build/bench/paho_bench [tether]=)
if cmake --build "$build" -j "$jobs" --target mqtt_bench >>"$build.log" 2>&1 &&
   [ -x "$build/bench/mqtt_bench" ]; then
    bin[tether]=$build/bench/mqtt_bench
else
    log "tether's mqtt_bench is not built (client not in the tree yet, or it failed: $build.log): n/a"
fi

# ---- broker -----------------------------------------------------------------
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] ||
    die "mosquitto not found: install the Debian package 'mosquitto'"
mosq_exe=$(command -v mosquitto || echo /usr/sbin/mosquitto)

# Many connections need many descriptors, in the broker and in the clients.
ulimit -Hn 200000 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tt-mqtt-bench-XXXXXX")
broker_pid=
cleanup() {
    [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_broker() {
    local attempt
    for attempt in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 12000))
        port_busy "$port" && continue
        {
            [ "$(id -u)" = 0 ] && echo "user root"
            echo "listener $port 127.0.0.1"
            echo "allow_anonymous true"
            echo "persistence false"
            echo "max_inflight_messages 0"      # no broker-side cap on QoS>0 windows
            echo "max_queued_messages 1000000"
            echo "set_tcp_nodelay true"
            echo "max_keepalive 65535"
            echo "log_dest file $tmp/mosquitto.log"
            echo "log_type error"
            echo "log_type warning"
        } >"$tmp/mosquitto.conf"
        "$mosq_exe" -c "$tmp/mosquitto.conf" >>"$tmp/mosquitto.out" 2>&1 &
        broker_pid=$!
        local i
        for i in $(seq 100); do
            kill -0 "$broker_pid" 2>/dev/null || break
            port_busy "$port" && return 0
            sleep 0.05
        done
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
        broker_pid=
    done
    cat "$tmp/mosquitto.out" >&2
    die "mosquitto did not start"
}
start_broker
max_conns=${TT_BENCH_MAX_CONNS:-$(( $(ulimit -n) - 500 ))}
log "mosquitto $("$mosq_exe" -h 2>/dev/null | sed -n '1s/.*version //p') on 127.0.0.1:$port (pid $broker_pid)"

clk_tck=$(getconf CLK_TCK)
# The bench programs read the broker's CPU time around their connections phase.
export TT_BENCH_BROKER_PID=$broker_pid
broker_ticks() { awk '{print $14 + $15}' "/proc/$broker_pid/stat"; }

# ---- runs -------------------------------------------------------------------
declare -A vals        # "client|metric" -> space-separated samples

field() { sed -n "s/.* $2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }
add() { vals["$1|$2"]="${vals["$1|$2"]:-} $3"; }

# run_one client scenario args...: one run, its RESULT line parsed into vals
run_one() {
    local client=$1 scen=$2 key=$3
    shift 3
    local c0 line c1 pre=()
    # PIN=core: the broker and the client share that one core for this run.
    if [ -n "${PIN:-}" ]; then
        taskset -p -c "$PIN" "$broker_pid" >/dev/null
        pre=(taskset -c "$PIN")
    fi
    c0=$(broker_ticks)
    line=$(timeout 300 "${pre[@]}" "${bin[$client]}" -h 127.0.0.1 -p "$port" -s "$scen" "$@" \
               2>>"$tmp/$client.err" | grep '^RESULT') || line=
    c1=$(broker_ticks)
    [ -n "${PIN:-}" ] && taskset -p -c "0-$(( $(nproc) - 1 ))" "$broker_pid" >/dev/null
    if [ -z "$line" ]; then
        log "$client $scen $*: no result (see below)"
        tail -3 "$tmp/$client.err" >&2 || true
        return 0
    fi
    echo "  $line" >&2
    case $scen in
        qos0)
            add "$client" "$key.rate" "$(field "$line" rate)"
            add "$client" "$key.lost" "$(field "$line" lost)"
            # Broker CPU over the measured interval (connect and the idle 1 s tail
            # cost next to nothing).
            add "$client" "$key.cpu" "$(awk -v a="$c0" -v b="$c1" -v s="$(field "$line" secs)" -v h="$clk_tck" \
                'BEGIN { if (s > 0) printf "%.0f", (b - a) / h / s * 100; else print "n/a" }')" ;;
        qos1)
            add "$client" "$key.rate" "$(field "$line" rate)"
            add "$client" "$key.cpu" "$(awk -v a="$c0" -v b="$c1" -v s="$(field "$line" secs)" -v h="$clk_tck" \
                'BEGIN { if (s > 0) printf "%.0f", (b - a) / h / s * 100; else print "n/a" }')" ;;
        rtt* | ertt* | urtt*)
            add "$client" "$key.p50" "$(field "$line" p50_us)"
            add "$client" "$key.p99" "$(field "$line" p99_us)"
            add "$client" "$key.p999" "$(field "$line" p999_us)" ;;
        conns | econns)
            add "$client" "$key.ok" "$(field "$line" connected)"
            add "$client" "$key.us" "$(field "$line" per_conn_us)"
            add "$client" "$key.kib" "$(field "$line" per_conn_kib)"
            add "$client" "$key.mkib" "$(field "$line" marginal_kib)"
            add "$client" "$key.bcon" "$(field "$line" broker_connect_us)"
            add "$client" "$key.cpu" "$(field "$line" client_cpu_us)"
            # The broker's side of each connection (accept, CONNACK, and the
            # close at the end): the floor under the time per connection.
            add "$client" "$key.bus" "$(awk -v a="$c0" -v b="$c1" -v n="$(field "$line" connected)" -v h="$clk_tck" \
                'BEGIN { if (n > 0) printf "%.1f", (b - a) / h / n * 1e6; else print "n/a" }')" ;;
    esac
}

# Connections closed by the clients wait 60 s in TIME_WAIT, and connect()
# walks past their ports: a conns run right after another one on the same
# source address pays for it (measured: 38 against 110 us per connection).
# Every conns run gets loopback source addresses of its own (127.0.0.10 on;
# Paho cannot choose one, so it alone uses 127.0.0.1), and the runs start
# once an earlier bench's TIME_WAIT sockets are gone.
next_source=10
sources_for() {   # connections -> TT_BENCH_SOURCE for a run of that many
    source=$next_source
    next_source=$(( next_source + ($1 + 4999) / 5000 ))
}
time_wait() { awk 'NR > 1 && $4 == "06"' /proc/net/tcp /proc/net/tcp6 2>/dev/null | wc -l; }
for i in $(seq 65); do
    [ "$(time_wait)" -lt 1000 ] && break
    [ "$i" = 1 ] && log "waiting for $(time_wait) TIME_WAIT sockets of an earlier run to go"
    sleep 1
done

taskset_ok=
command -v taskset >/dev/null && taskset -p "$broker_pid" >/dev/null 2>&1 && taskset_ok=1

clients=()
for c in $only; do
    [ -n "${bin[$c]:-}" ] && clients+=("$c")
done

for r in $(seq "$runs"); do
    log "run $r of $runs"
    for c in "${clients[@]}"; do
        run_one "$c" qos0 qos0 -n "$n_qos0"
        # -T 30: libmosquitto at window 65,535 falls to ~1,500 msg/s (it walks
        # its whole inflight list on every PUBACK); the rate is over what was
        # acknowledged by then.
        run_one "$c" qos1 qos1w1k -n "$n_qos1" -w 1000 -T 30
        run_one "$c" qos1 qos1w64k -n "$n_qos1" -w 65535 -T 30
        run_one "$c" rtt0 rtt0 -n "$n_rtt"
        run_one "$c" rtt1 rtt1 -n "$n_rtt"
        e=
        if [ "$c" = tether ]; then
            # One thread does everything, as in the libmosquitto program:
            # tether embedded in the bench thread's own libevent loop.
            run_one "$c" ertt0 ertt0 -n "$n_rtt"
            run_one "$c" ertt1 ertt1 -n "$n_rtt"
            # Pull mode on one thread: tt_client_poll() runs the loop.
            run_one "$c" urtt0 urtt0 -n "$n_rtt"
            run_one "$c" urtt1 urtt1 -n "$n_rtt"
            e=e
        fi
        # Where the scheduler puts the client and the broker moves a round
        # trip by 5-8 us either way (a wake-up across cores against one on
        # the same core), and it does not always choose the same: the same
        # program measured 28 and 36 us p50 in back-to-back runs. With both
        # pinned to one core only the programs' own work differs.
        if [ -n "$taskset_ok" ]; then
            PIN=0 run_one "$c" ${e}rtt0 prtt0 -n "$n_rtt"
            PIN=0 run_one "$c" ${e}rtt1 prtt1 -n "$n_rtt"
        fi
        # Paho's threads pick up a new connection on a timer, so one at a time
        # takes ~1 s each; all at once is its best.
        k=100
        [ "$c" = paho ] && k=$conns
        sources_for "$conns"
        TT_BENCH_SOURCE=$source run_one "$c" conns conns -c "$conns" -k "$k" -T 120
        if [ "$c" = tether ]; then
            sources_for "$conns"
            TT_BENCH_SOURCE=$source run_one "$c" econns econns -c "$conns" -k 100 -T 120
        fi
    done
done

# The most connections each holds (once: it runs until something gives out).
if [ "$quick" = 0 ]; then
    log "most connections, asking for $max_conns"
    for c in "${clients[@]}"; do
        k=100
        [ "$c" = paho ] && k=$max_conns
        sources_for "$max_conns"
        TT_BENCH_SOURCE=$source run_one "$c" conns maxconns -c "$max_conns" -k "$k" -T 180
    done
fi

# ---- instructions per publish (callgrind) --------------------------------------
collected() {   # client n -> total instructions of a publisher-only run
    local f=$tmp/cg.$1.$2
    valgrind --tool=callgrind --callgrind-out-file="$f.out" \
        "${bin[$1]}" -h 127.0.0.1 -p "$port" -s pub0 -n "$2" -T 600 >/dev/null 2>"$f.err" || true
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$f.err" | tail -1
}
if [ $callgrind = 1 ]; then
    if command -v valgrind >/dev/null; then
        for c in "${clients[@]}"; do
            log "callgrind: $c publisher, $cg_n and $((2 * cg_n)) messages"
            i1=$(collected "$c" "$cg_n")
            i2=$(collected "$c" $((2 * cg_n)))
            if [ -n "$i1" ] && [ -n "$i2" ]; then
                add "$c" instr "$(( (i2 - i1) / cg_n ))"
                echo "  $c: I($cg_n)=$i1 I($((2 * cg_n)))=$i2" >&2
            fi
        done
    else
        log "valgrind not found (Debian package 'valgrind'): no instruction counts"
    fi
fi

# ---- the table --------------------------------------------------------------
median() {   # samples... -> median (the middle one; the lower middle for an even count)
    [ $# -eq 0 ] && { echo "n/a"; return; }
    printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"
}
cell() {
    # shellcheck disable=SC2086
    median ${vals["$1|$2"]:-}
}
ratio() {
    awk -v t="$1" -v m="$2" 'BEGIN {
        if (t == "n/a" || m == "n/a" || m + 0 == 0) { print "n/a"; exit }
        printf "%.2fx", t / m }'
}

rows=(
    "qos0.rate|QoS 0 end-to-end msg/s, 1 pub -> 1 sub (more is better)"
    "qos0.lost|QoS 0 messages lost of $n_qos0 (less)"
    "qos0.cpu|broker CPU % of a core during QoS 0"
    "instr|user-space instructions per QoS 0 publish, callgrind marginal (less)"
    "qos1w1k.rate|QoS 1 msg/s, window 1,000 (more)"
    "qos1w1k.cpu|broker CPU % of a core during QoS 1, window 1,000"
    "qos1w64k.rate|QoS 1 msg/s, window 65,535 (more)"
    "ertt0.p50|round trip QoS 0 p50 us, one thread (tether embedded) (less)|rtt0.p50"
    "ertt0.p99|round trip QoS 0 p99 us, one thread (tether embedded) (less)|rtt0.p99"
    "ertt0.p999|round trip QoS 0 p99.9 us, one thread (tether embedded) (less)|rtt0.p999"
    "ertt1.p50|round trip QoS 1 p50 us, one thread (tether embedded) (less)|rtt1.p50"
    "ertt1.p99|round trip QoS 1 p99 us, one thread (tether embedded) (less)|rtt1.p99"
    "ertt1.p999|round trip QoS 1 p99.9 us, one thread (tether embedded) (less)|rtt1.p999"
    "prtt0.p50|round trip QoS 0 p50 us, both on one core, tether embedded (less)"
    "prtt0.p99|round trip QoS 0 p99 us, both on one core, tether embedded (less)"
    "prtt1.p50|round trip QoS 1 p50 us, both on one core, tether embedded (less)"
    "prtt1.p99|round trip QoS 1 p99 us, both on one core, tether embedded (less)"
    "urtt0.p50|round trip QoS 0 p50 us, pull mode on one thread (less)|rtt0.p50"
    "urtt0.p99|round trip QoS 0 p99 us, pull mode on one thread (less)|rtt0.p99"
    "urtt1.p50|round trip QoS 1 p50 us, pull mode on one thread (less)|rtt1.p50"
    "urtt1.p99|round trip QoS 1 p99 us, pull mode on one thread (less)|rtt1.p99"
    "rtt0.p50|round trip QoS 0 p50 us, tether's own threads, pull mode (less)"
    "rtt0.p99|round trip QoS 0 p99 us, tether's own threads, pull mode (less)"
    "rtt0.p999|round trip QoS 0 p99.9 us, tether's own threads, pull mode (less)"
    "rtt1.p50|round trip QoS 1 p50 us, tether's own threads, pull mode (less)"
    "rtt1.p99|round trip QoS 1 p99 us, tether's own threads, pull mode (less)"
    "rtt1.p999|round trip QoS 1 p99.9 us, tether's own threads, pull mode (less)"
    "maxconns.ok|most connections in one process (asked: $max_conns)"
    "econns.us|time per connection us, $conns, one thread (tether embedded) (less)|conns.us"
    "conns.us|time per connection us, $conns, tether's own threads (less)"
    "econns.cpu|client CPU us per connection (user + system), $conns, one thread (less)|conns.cpu"
    "conns.cpu|client CPU us per connection (user + system), $conns, own threads (less)"
    "conns.kib|client RSS per connection KiB, $conns connections (less)"
    "conns.bus|broker CPU us per connection (connect and close), $conns connections"
    "conns.bcon|broker CPU us per connect (close not counted), $conns connections"
    "maxconns.us|time per connection us, at the most connections (less)"
    "maxconns.kib|client RSS per connection KiB, at the most connections (less)"
    "conns.mkib|client RSS per added connection KiB, 2nd half of $conns (less)"
    "maxconns.mkib|client RSS per added connection KiB, 2nd half of the most (less)"
)

echo
echo "MQTT, 64-byte payloads, mosquitto $("$mosq_exe" -h 2>/dev/null | sed -n '1s/.*version //p'), $(nproc) cores, median of $runs"
printf '| %-70s | %12s | %12s | %12s | %19s |\n' figure libmosquitto Paho tether tether/libmosquitto
printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' $(seq 72))" "$(printf -- '-%.0s' $(seq 14))" \
    "$(printf -- '-%.0s' $(seq 14))" "$(printf -- '-%.0s' $(seq 14))" "$(printf -- '-%.0s' $(seq 21))"
for row in "${rows[@]}"; do
    key=${row%%|*}
    name=${row#*|}
    peer_key=$key
    case $name in *"|"*) peer_key=${name#*|}; name=${name%%|*} ;; esac
    m=$(cell mosq "$peer_key")
    p=$(cell paho "$key")      # Paho always runs its own threads
    t=$(cell tether "$key")
    printf '| %-70s | %12s | %12s | %12s | %19s |\n' "$name" "$m" "$p" "$t" "$(ratio "$t" "$m")"
done
