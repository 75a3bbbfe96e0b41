#!/usr/bin/env bash
# Commands cross from one host to another through the bridges and a three-node JetStream
# cluster: web on alpha places orders, ledger on alpha and shipping on beta each get every
# one, with every field as sent (the message id the same on both hosts, the request id,
# the version, the sender, the name translated at beta's edge).
#   commands_cross_hosts_test.sh PROBE EXOBUSD BRIDGE
set -u
PROBE=$1 EXOBUSD=$2 BRIDGE=$3
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
if ((failures)); then
    show_logs
    exit 1
fi
echo "ok   $count orders crossed from alpha to beta with every field intact"
