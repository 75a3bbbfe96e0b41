#!/usr/bin/env bash
# Back-pressure crosses hosts: while shipping on beta is stopped (SIGSTOP) its queue fills,
# beta's bridge hands what it pulls back to JetStream, and the stream holds the rest, its
# consumer never more than max-ack-pending (64) ahead; alpha's sends all return ok. Once
# shipping runs again every order arrives.
#   backpressure_test.sh PROBE EXOBUSD BRIDGE EXOBUS
set -u
PROBE=$1 EXOBUSD=$2 BRIDGE=$3 EXOBUS=$4
APPLICATION=$(dirname "$0")/backpressure.yml
DEPLOYMENT=$(dirname "$0")/backpressure.yml.in
# shellcheck source=tests/bridge/hosts.sh
source "$(dirname "$0")/hosts.sh"

count=1000
start_nats_cluster
start_host alpha
start_host beta
start_as beta shipping shipping "$PROBE" record "$work/shipping.rec"
wait_ready shipping || { echo "FAIL shipping did not start" >&2; show_logs; exit 1; }
start_bridge alpha
start_bridge beta

failures=0
kill -STOP "${pids[shipping]}"
on_host alpha env EXOBUS_SERVICE=web "$PROBE" send order.place "$count" "$work/sent" || { show_logs; exit 1; }
sent=$(wc -l <"$work/sent")
((sent == count)) || { echo "FAIL only $sent of $count sends returned ok: alpha felt beta's full queue" >&2; failures=$((failures + 1)); }

# The stream holds what beta's bus cannot take: pending in the consumer, at most 64 out.
held() {
    local line
    line=$(on_host beta "$EXOBUS" status 2>/dev/null | grep "from shipping:") || return 1
    [[ $line =~ retried\ ([0-9]+).*lag\ ([0-9]+)\ pending,\ ([0-9]+)\ unacknowledged ]] || return 1
    held_line=$line
    ((BASH_REMATCH[1] > 0 && BASH_REMATCH[2] > 0 && BASH_REMATCH[3] <= 64))
}
if eventually 30 held; then
    echo "ok   beta's bridge holds the stream: $held_line"
else
    echo "FAIL beta's bridge does not hold the stream back:" >&2
    on_host beta "$EXOBUS" status >&2
    failures=$((failures + 1))
fi

kill -CONT "${pids[shipping]}"
arrived() { (($(distinct_seqs "$work/shipping.rec") >= sent)); }
eventually 120 arrived || echo "not every order arrived in time" >&2
"$PROBE" check "$work/sent" "$work/shipping.rec" web ship || failures=$((failures + 1))
if ((failures)); then
    show_logs
    exit 1
fi
echo "ok   $sent orders held by the stream while beta's queue was full, all delivered after"
