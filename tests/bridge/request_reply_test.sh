#!/usr/bin/env bash
# Requests cross hosts and their replies come back to the instance that asked: two web
# instances on alpha each ask for quotes at once; pricing on beta answers each with streamed
# progress replies, then a final one. Every request gets all its replies, in order, and
# only its own.
#   request_reply_test.sh PROBE EXOBUSD BRIDGE
set -u
PROBE=$1 EXOBUSD=$2 BRIDGE=$3
APPLICATION=$(dirname "$0")/application.yml
# shellcheck source=tests/bridge/hosts.sh
source "$(dirname "$0")/hosts.sh"

start_nats_cluster
start_host alpha
start_host beta
start_as beta pricing pricing "$PROBE" serve-quotes
wait_ready pricing || { echo "FAIL pricing did not start" >&2; show_logs; exit 1; }
start_bridge alpha
start_bridge beta

on_host alpha env EXOBUS_SERVICE=web "$PROBE" ask 200 3 0 >"$work/ask-1.out" 2>&1 &
first=$!
on_host alpha env EXOBUS_SERVICE=web "$PROBE" ask 200 3 1000 >"$work/ask-2.out" 2>&1 &
second=$!
failures=0
wait "$first" || failures=$((failures + 1))
wait "$second" || failures=$((failures + 1))
cat "$work/ask-1.out" "$work/ask-2.out"
if ((failures)); then
    show_logs
    exit 1
fi
echo "ok   400 requests from two instances on alpha answered across hosts, each with its own streamed replies"
