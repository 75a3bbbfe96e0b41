# shellcheck shell=bash
# Two "hosts" on one machine and a three-node NATS cluster between them, for the bridge
# tests. Source it with PROBE, EXOBUSD, BRIDGE and APPLICATION set (and DEPLOYMENT, the
# deployment's template, when not deployment.yml.in); it stops every process
# it started and removes its directory on exit, also when the test fails or is killed.
#
#   start_nats_cluster            nodes n1..n3 on 127.0.0.1..3, JetStream on file storage
#   start_host NAME               an exobusd on bus t<pid>-NAME, runtime dir $work/NAME
#   start_bridge NAME             exobus-bridge --host NAME, waiting until it is ready
#   start_as NAME TYPE LABEL CMD  a service of TYPE on host NAME, its output in $work/LABEL.out
#   on_host NAME CMD...           a command with host NAME's bus in its environment
#   stop LABEL / kill9 LABEL      a started process, by the label it was started under
set -u

work=$(mktemp -d "${TMPDIR:-/tmp}/exobus-bridge-test.XXXXXX")
declare -A pids=()
die_with_us=()
command -v setpriv >/dev/null && die_with_us=(setpriv --pdeathsig KILL)

stop() {
    local label=$1 pid=${pids[$1]:-}
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "pids[$label]"
}

kill9() {
    local label=$1 pid=${pids[$1]:-}
    [[ -n $pid ]] || return 0
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "pids[$label]"
}

cleanup() {
    local label
    # Services and bridges first, daemons and NATS last.
    for label in "${!pids[@]}"; do [[ $label == exobusd-* || $label == nats-* ]] || stop "$label"; done
    for label in "${!pids[@]}"; do [[ $label == exobusd-* ]] && stop "$label"; done
    for label in "${!pids[@]}"; do stop "$label"; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# eventually SECONDS COMMAND...: COMMAND succeeds within SECONDS.
eventually() {
    local seconds=$1
    shift
    for _ in $(seq $((seconds * 10))); do "$@" && return 0; sleep 0.1; done
    return 1
}

show_logs() {
    local log
    for log in "$work"/*.log "$work"/*.out; do
        [[ -f $log ]] || continue
        echo "--- $(basename "$log") (last 30 lines) ---" >&2
        tail -n 30 "$log" >&2
    done
}

declare -A client_port=()
nats_servers=""

start_nats_node() {
    local node=$1
    "${die_with_us[@]}" nats-server --config "$work/$node.conf" >"$work/nats-$node.log" 2>&1 &
    pids[nats-$node]=$!
}

start_nats_cluster() {
    local node address
    declare -A route_port=()
    for node in 1 2 3; do
        address=127.0.0.$node
        client_port[$node]=$("$PROBE" free-port "$address")
        route_port[$node]=$("$PROBE" free-port "$address")
    done
    for node in 1 2 3; do
        address=127.0.0.$node
        local routes=""
        for other in 1 2 3; do
            [[ $other == "$node" ]] || routes+="nats-route://127.0.0.$other:${route_port[$other]}, "
        done
        cat >"$work/n$node.conf" <<CONF
server_name: n$node
listen: $address:${client_port[$node]}
jetstream { store_dir: "$work/n$node", max_memory_store: 64MB, max_file_store: 1GB }
cluster { name: exobus-test, listen: $address:${route_port[$node]}, routes: [${routes%, }] }
CONF
        nats_servers+="${nats_servers:+, }nats://$address:${client_port[$node]}"
    done
    for node in 1 2 3; do start_nats_node "n$node"; done
    sed "s|@SERVERS@|$nats_servers|" "${DEPLOYMENT:-$(dirname "${BASH_SOURCE[0]}")/deployment.yml.in}" \
        >"$work/deployment.yml"
    # JetStream is usable once the three nodes elected a meta leader.
    if ! eventually 30 grep -q "JetStream cluster new metadata leader\|Self is new JetStream cluster metadata leader" \
        "$work"/nats-n*.log; then
        echo "FAIL the NATS cluster elected no JetStream leader" >&2
        show_logs
        exit 1
    fi
}

bus_of() { echo "t$$-$1"; }

start_host() {
    local host=$1
    mkdir -p "$work/$host"
    "${die_with_us[@]}" "$EXOBUSD" --config "$APPLICATION" --bus "$(bus_of "$host")" --runtime-dir "$work/$host" \
        --reset --remove-segment >"$work/exobusd-$host.log" 2>&1 &
    pids[exobusd-$host]=$!
    if ! eventually 10 grep -q "serving bus" "$work/exobusd-$host.log"; then
        echo "FAIL exobusd of $host did not start" >&2
        show_logs
        exit 1
    fi
}

on_host() {
    local host=$1
    shift
    EXOBUS_BUS=$(bus_of "$host") EXOBUS_RUNTIME_DIR=$work/$host EXOBUS_TEST_APPLICATION=$APPLICATION "$@"
}

start_as() {
    local host=$1 type=$2 label=$3
    shift 3
    # A simple command, so that $! is the service itself (a signal sent to it reaches it).
    EXOBUS_BUS=$(bus_of "$host") EXOBUS_RUNTIME_DIR=$work/$host EXOBUS_TEST_APPLICATION=$APPLICATION \
        EXOBUS_SERVICE=$type "${die_with_us[@]}" "$@" >"$work/$label.out" 2>&1 &
    pids[$label]=$!
}

# The bridge stops at start when JetStream cannot yet place the stream (a leader moving):
# start it again, as its service manager would.
start_bridge() {
    local host=$1 attempt
    for attempt in $(seq 10); do
        "${die_with_us[@]}" "$BRIDGE" --config "$APPLICATION" --deployment "$work/deployment.yml" --host "$host" \
            --bus "$(bus_of "$host")" --runtime-dir "$work/$host" --status-every 2 \
            >>"$work/bridge-$host.out" 2>>"$work/bridge-$host.log" &
        pids[bridge-$host]=$!
        if eventually 15 grep -q "^ready" "$work/bridge-$host.out"; then
            : >"$work/bridge-$host.out"
            return 0
        fi
        kill9 "bridge-$host"
        sleep 0.5
    done
    echo "FAIL the bridge of $host did not start" >&2
    show_logs
    exit 1
}

wait_ready() { eventually 10 grep -q "^ready" "$work/$1.out"; }

# distinct_seqs FILE: how many different seqs a record holds.
distinct_seqs() { [[ -f $1 ]] && cut -d' ' -f1 "$1" | sort -u | wc -l || echo 0; }
