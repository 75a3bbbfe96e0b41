#!/usr/bin/env bash
# Commands cross from one host to another through the bridges and a three-node JetStream
# cluster: web on alpha places orders, ledger on alpha and shipping on beta each get every
# one, with every field as sent (the message id the same on both hosts, the request id,
# the version, the sender, the name translated at beta's edge); `exobus status` on each host
# shows its bridge, connected, with what it carried.
#   commands_cross_hosts_test.sh PROBE EXOBUSD BRIDGE EXOBUS
set -u
PROBE=$1 EXOBUSD=$2 BRIDGE=$3 EXOBUS=$4
APPLICATION=$(dirname "$0")/application.yml
# shellcheck source=tests/bridge/hosts.sh
source "$(dirname "$0")/hosts.sh"

count=500
start_nats_cluster
start_host alpha
start_host beta
start_as alpha ledger ledger "$PROBE" record "$work/ledger.rec"
start_as beta shipping shipping "$PROBE" record "$work/shipping.rec"
wait_ready ledger && wait_ready shipping || { echo "FAIL the recorders did not start" >&2; show_logs; exit 1; }
start_bridge alpha
start_bridge beta

if ! on_host alpha env EXOBUS_SERVICE=web "$PROBE" send order.place "$count" "$work/sent"; then
    echo "FAIL web could not send" >&2
    show_logs
    exit 1
fi
arrived() { (($(distinct_seqs "$work/shipping.rec") >= count && $(distinct_seqs "$work/ledger.rec") >= count)); }
if ! eventually 120 arrived; then
    echo "FAIL not every order arrived: shipping $(distinct_seqs "$work/shipping.rec"), ledger" \
        "$(distinct_seqs "$work/ledger.rec") of $count" >&2
fi

failures=0
echo "shipping on beta:"
"$PROBE" check "$work/sent" "$work/shipping.rec" web ship "$work/ledger.rec" || failures=$((failures + 1))
echo "ledger on alpha:"
"$PROBE" check "$work/sent" "$work/ledger.rec" web order.place || failures=$((failures + 1))
# status_shows HOST TEXT: `exobus status` on HOST holds TEXT (within the bridge's
# one-second refresh).
status_shows() { on_host "$1" "$EXOBUS" status 2>&1 | grep -qF -- "$2"; }
for expected in "alpha|bridge of host alpha (pid ${pids[bridge-alpha]})" "alpha|nats connected to nats://127.0.0." \
    "alpha|to shipping: published $count," "beta|from shipping: relayed $count," "beta|lag 0 pending, 0 unacknowledged"; do
    host=${expected%%|*} text=${expected#*|}
    if eventually 10 status_shows "$host" "$text"; then
        echo "ok   exobus status on $host shows '$text'"
    else
        echo "FAIL exobus status on $host does not show '$text':" >&2
        on_host "$host" "$EXOBUS" status >&2
        failures=$((failures + 1))
    fi
done
kill9 bridge-beta
if eventually 10 status_shows beta "not running: its last status"; then
    echo "ok   exobus status on beta says its bridge is not running once it was killed"
else
    echo "FAIL exobus status on beta does not say its killed bridge is not running" >&2
    failures=$((failures + 1))
fi

if ((failures)); then
    show_logs
    exit 1
fi
echo "ok   $count orders crossed from alpha to beta with every field intact"
