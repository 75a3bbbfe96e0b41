#!/usr/bin/env bash
# exobus top against a running bus (see tests/cli/with_exobusd.sh): --once shows the figures
# of a known state, the rates of a running workload, and the live view in a real terminal
# (tmux) quits on q.
#   top_test.sh EXOBUS GREETER
set -u
exobus=$1 greeter=$2
failures=0
out=$(mktemp) err=$(mktemp)
greeter_pid= sender_pid= session="exobus-top-$$"

cleanup() {
    for pid in $sender_pid $greeter_pid; do
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    tmux kill-session -t "$session" 2>/dev/null
    rm -f "$out" "$err"
}
trap cleanup EXIT

# shellcheck source=tests/cli/checks.sh
source "$(dirname "$0")/../cli/checks.sh"

# row PATTERN: the line of the last --once frame that starts with PATTERN, blanks squeezed.
row() { grep -E "^$1" "$out" | tr -s ' '; }
# expect_row NAME PATTERN EXPECTED: that line equals EXPECTED.
expect_row() {
    local got
    got=$(row "$2")
    if [[ $got == "$3" ]]; then
        echo "ok   $1"
    else
        echo "FAIL $1: expected '$3', got '$got'; the frame:" >&2
        cat "$out" >&2
        failures=$((failures + 1))
    fi
}

expect "top without a daemon fails typed" 1 "daemon_not_running" "$exobus" top --once --bus "no-daemon-$$"
expect "top to a pipe without --once asks for it" 2 "use --once" "$exobus" top
expect "top refuses an interval out of range" 2 "--interval" "$exobus" top --once --interval 0

# Two notifications wait for a greeter that does not run yet.
for n in 1 2; do
    expect "notify $n is sent" 0 "" "$exobus" send notify '{}' --as client
done
expect "top --once prints a frame" 0 "SERVICE TYPE" "$exobus" top --once --interval 0.2
#    TYPE  SENT/S DELIV/S QUEUED INFL ACKED REDELIV DEAD REFUSED DELAY-P50 DELAY-P99 INSTANCES
expect_row "the greeter's queue holds the two notifications" "greeter " "greeter 0.0 0.0 2 0 0 0 0 0 - - 0"
expect_row "the client type has no instance left" "client " "client 0.0 0.0 0 0 0 0 0 0 - - 0"
expect "top --once says when no instance runs" 0 "no instances running" "$exobus" top --once --interval 0.2
expect_row "the 256-byte buffers hold the two waiting messages" "256 B " "256 B 512 2 510 0%"
expect_row "the 4 KiB buffers are all free" "4 KiB " "4 KiB 128 0 128 0%"

start_greeter
expect "a poison greeting is sent" 0 "" "$exobus" send greet '{"poison":true}' --as client
eventually 10 bash -c "'$exobus' status --json | jq -e '.service_types[] | select(.name == \"greeter\") | .dead_lettered == 1 and .acked == 2'"
expect "top --once shows the settled state" 0 "" "$exobus" top --once --interval 0.2
# The two notifications waited through a frame of 0.2 s before the greeter started: half and
# 99 % of the greeter's three deliveries waited less than a bound of 268 ms or more.
settled=$(row "greeter ") waited='(<268ms|<537ms|<[0-9.]+s)'
if [[ $settled =~ ^greeter\ 0\.0\ 0\.0\ 0\ 0\ 2\ 0\ 1\ 0\ $waited\ $waited\ 1$ ]]; then
    echo "ok   the greeter took both notifications, dead-lettered the poison, and shows how long they waited"
else
    echo "FAIL the greeter's line is '$settled'; the frame:" >&2
    cat "$out" >&2
    failures=$((failures + 1))
fi
instance=$(row " *[0-9]+ +greeter ")
if [[ $instance =~ ^\ ?[0-9]+\ greeter\ $greeter_pid\ running\ 0\ 0\.0\ 0\.0\ 3\ 2$ ]]; then
    echo "ok   the greeter instance is listed with its pid, running, its counts and rates"
else
    echo "FAIL the greeter instance's line is '$instance'; the frame:" >&2
    cat "$out" >&2
    failures=$((failures + 1))
fi

# While a sender loops, the rates are those of the messages it sends.
(while :; do "$exobus" send notify '{}' --as client >/dev/null 2>&1 || exit; done) &
sender_pid=$!
eventually 10 bash -c "'$exobus' status --json | jq -e '.service_types[] | select(.name == \"greeter\") | .delivered >= 8'"
expect "top --once over a second of traffic" 0 "" "$exobus" top --once --interval 1
delivery_rate=$(row "greeter " | cut -d' ' -f3)
if [[ $delivery_rate =~ ^[0-9]+\.[0-9]$ && $delivery_rate != "0.0" ]]; then
    echo "ok   the greeter's delivery rate shows the traffic ($delivery_rate/s)"
else
    echo "FAIL the greeter's delivery rate is '$delivery_rate' while a sender loops; the frame:" >&2
    cat "$out" >&2
    failures=$((failures + 1))
fi
kill -TERM "$sender_pid" 2>/dev/null
wait "$sender_pid" 2>/dev/null
sender_pid=

# The live view in a real terminal: it draws the table, refreshes, and q ends it.
tmux new-session -d -s "$session" -x 160 -y 40 \
    "EXOBUS_BUS=$EXOBUS_BUS EXOBUS_RUNTIME_DIR=$EXOBUS_RUNTIME_DIR '$exobus' top --interval 0.2"
if eventually 10 bash -c "tmux capture-pane -p -t '$session' | grep -q 'press q to quit'" &&
    tmux capture-pane -p -t "$session" | grep -q "^greeter "; then
    echo "ok   top draws the bus in a terminal"
else
    echo "FAIL top drew no frame in a terminal:" >&2
    tmux capture-pane -p -t "$session" >&2
    failures=$((failures + 1))
fi
tmux send-keys -t "$session" q
if eventually 5 bash -c "! tmux has-session -t '$session' 2>/dev/null"; then
    echo "ok   q quits top"
else
    echo "FAIL top still runs after q" >&2
    failures=$((failures + 1))
fi

finish
