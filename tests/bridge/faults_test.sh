#!/usr/bin/env bash
# Faults under load, checked from the histories: orders stream from web on alpha to
# shipping on beta while the bridge of alpha is killed with SIGKILL and restarted, then the
# bridge of beta, then one NATS node (the cluster keeps its quorum with two), then beta's
# exobusd (restarted on the same memory). Every order whose send returned ok reaches
# shipping (and ledger, on alpha) with its fields intact; a copy delivered twice says so.
#   faults_test.sh PROBE EXOBUSD BRIDGE EXOBUS [ROUNDS]   (ROUNDS > 1: each NATS node in turn)
set -u
PROBE=$1 EXOBUSD=$2 BRIDGE=$3 rounds=${5:-1}
APPLICATION=$(dirname "$0")/application.yml
# shellcheck source=tests/bridge/hosts.sh
source "$(dirname "$0")/hosts.sh"

batch=1000
start_nats_cluster
start_host alpha
start_host beta
start_as alpha ledger ledger "$PROBE" record "$work/ledger.rec"
start_as beta shipping shipping "$PROBE" record "$work/shipping.rec"
wait_ready ledger && wait_ready shipping || { echo "FAIL the recorders did not start" >&2; show_logs; exit 1; }
start_bridge alpha
start_bridge beta

sent=0
# send_batch: $batch orders from web on alpha, numbered on from the last, in the background.
send_batch() {
    on_host alpha env EXOBUS_SERVICE=web "$PROBE" send order.place "$batch" "$work/sent.$sent" "$sent" \
        >>"$work/web.out" 2>&1 &
    sender=$!
    sent=$((sent + batch))
}
# shipped_past N: shipping has recorded more than N distinct orders (the bridges are busy).
shipped_past() { (($(distinct_seqs "$work/shipping.rec") > $1)); }

for round in $(seq "$rounds"); do
    echo "round $round"
    send_batch
    eventually 60 shipped_past $((sent - batch + 100))
    kill9 bridge-alpha
    start_bridge alpha
    wait "$sender"

    send_batch
    eventually 60 shipped_past $((sent - batch + 100))
    kill9 bridge-beta
    start_bridge beta
    wait "$sender"

    send_batch
    eventually 60 shipped_past $((sent - batch + 100))
    node=n$(((round - 1) % 3 + 1))
    kill9 "nats-$node"
    wait "$sender"

    send_batch
    eventually 60 shipped_past $((sent - batch + 100))
    kill9 exobusd-beta
    "${die_with_us[@]}" "$EXOBUSD" --config "$APPLICATION" --bus "$(bus_of beta)" --runtime-dir "$work/beta" \
        --remove-segment >>"$work/exobusd-beta.log" 2>&1 &
    pids[exobusd-beta]=$!
    wait "$sender"
    start_nats_node "$node"
done

cat "$work"/sent.* >"$work/sent"
all_arrived() { (($(distinct_seqs "$work/shipping.rec") >= $(wc -l <"$work/sent"))); }
eventually 180 all_arrived || echo "not every order arrived in time" >&2

failures=0
echo "shipping on beta:"
"$PROBE" check "$work/sent" "$work/shipping.rec" web ship "$work/ledger.rec" || failures=$((failures + 1))
echo "ledger on alpha:"
"$PROBE" check "$work/sent" "$work/ledger.rec" web order.place || failures=$((failures + 1))
if ((failures)); then
    show_logs
    exit 1
fi
echo "ok   $(wc -l <"$work/sent") orders through kill -9 of both bridges, a NATS node and a daemon"
