#!/usr/bin/env bash
# A service type on two hosts: shipping runs on beta and on gamma, and their instances
# compete for the orders web sends from alpha (through the one durable consumer their
# bridges share). Every order reaches one of them, each gets a share, and ledger on alpha
# gets every one too (fan-out to a local and a remote type).
#   competing_hosts_test.sh PROBE EXOBUSD BRIDGE
set -u
PROBE=$1 EXOBUSD=$2 BRIDGE=$3
APPLICATION=$(dirname "$0")/application.yml
DEPLOYMENT=$(dirname "$0")/competing.yml.in
# shellcheck source=tests/bridge/hosts.sh
source "$(dirname "$0")/hosts.sh"

count=1000
start_nats_cluster
for host in alpha beta gamma; do start_host "$host"; done
start_as alpha ledger ledger "$PROBE" record "$work/ledger.rec"
start_as beta shipping shipping-beta "$PROBE" record "$work/shipping.rec"
start_as gamma shipping shipping-gamma "$PROBE" record "$work/shipping-gamma.rec"
for label in ledger shipping-beta shipping-gamma; do
    wait_ready "$label" || { echo "FAIL $label did not start" >&2; show_logs; exit 1; }
done
for host in alpha beta gamma; do start_bridge "$host"; done

on_host alpha env EXOBUS_SERVICE=web "$PROBE" send order.place "$count" "$work/sent" || { show_logs; exit 1; }
# Both records together: what shipping as a type received.
merged() { cat "$work/shipping.rec" "$work/shipping-gamma.rec" 2>/dev/null >"$work/shipping-all.rec"; }
arrived() { merged; (($(distinct_seqs "$work/shipping-all.rec") >= count)); }
eventually 120 arrived || echo "not every order arrived in time" >&2
merged

failures=0
echo "shipping on beta and gamma together:"
"$PROBE" check "$work/sent" "$work/shipping-all.rec" web ship "$work/ledger.rec" || failures=$((failures + 1))
echo "ledger on alpha:"
"$PROBE" check "$work/sent" "$work/ledger.rec" web order.place || failures=$((failures + 1))
on_beta=$(distinct_seqs "$work/shipping.rec") on_gamma=$(distinct_seqs "$work/shipping-gamma.rec")
echo "shipping on beta took $on_beta, on gamma $on_gamma"
if ((on_beta == 0 || on_gamma == 0)); then
    echo "FAIL one host's instances got none: they do not compete" >&2
    failures=$((failures + 1))
fi
if ((failures)); then
    show_logs
    exit 1
fi
echo "ok   $count orders shared between shipping on two hosts, each also on alpha's ledger"
