#!/usr/bin/env bash
# The exobus status, send and dlq subcommands against a running bus (see with_exobusd.sh).
#   cli_test.sh EXOBUS GREETER
# EXOBUS is the CLI; GREETER serves the 'greeter' type of application.yml.
set -u
exobus=$1 greeter=$2
failures=0
out=$(mktemp) err=$(mktemp)
greeter_pid=

cleanup() {
    if [[ -n $greeter_pid ]]; then
        kill -TERM "$greeter_pid" 2>/dev/null
        wait "$greeter_pid" 2>/dev/null
    fi
    rm -f "$out" "$err"
}
trap cleanup EXIT

# shellcheck source=tests/cli/checks.sh
source "$(dirname "$0")/checks.sh"

# The command line alone: help and the tool's version (send's own --version is the message's).
expect_line "exobus --version prints the tool's version" 0 '^exobus [0-9]+\.[0-9]+' "$exobus" --version
expect "send --help describes --version" 0 "--version VERSION" "$exobus" send --help
expect "send --help describes --request-id" 0 "--request-id UUID" "$exobus" send --help
expect "send --help describes the reply lines" 0 "OUTCOME version=VERSION request=UUID" "$exobus" send --help

# Without a daemon on the named bus: a typed error and exit code 1.
expect "status without a daemon fails" 1 "daemon_not_running" \
    "$exobus" status --bus "no-daemon-$$"
expect "dlq without a daemon fails" 1 "daemon_not_running" \
    "$exobus" dlq list --type greeter --bus "no-daemon-$$"
expect "send without a daemon fails" 1 "daemon_not_running" \
    "$exobus" send greet '{"name":"ann"}' --as client --bus "no-daemon-$$"
expect "status without a bus name fails" 1 "--bus" \
    env -u EXOBUS_BUS "$exobus" status

# A greeter instance, and the status that shows it.
start_greeter

expect "status lists the service types" 0 "SERVICE TYPE" "$exobus" status
expect "status names the greeter type" 0 "greeter" "$exobus" status
expect "status lists the greeter instance" 0 "instances of greeter:" "$exobus" status
expect "status shows the greeter pid" 0 " $greeter_pid " "$exobus" status
expect "status --json prints the daemon's document" 0 '"service_types":[' "$exobus" status --json
if "$exobus" status --json | jq -e --argjson pid "$greeter_pid" \
    '.service_types[] | select(.name == "greeter") | .instances[] | select(.pid == $pid and .connected)' \
    >/dev/null; then
    echo "ok   status --json is JSON holding the connected greeter"
else
    echo "FAIL status --json is not JSON holding the greeter instance" >&2
    failures=$((failures + 1))
fi

# Send, with and without waiting for replies.
expect_line "send waits for and prints the reply, its version and request id" 0 \
    '^greet\.ok version=1 request=[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12} \{"greeting":"hello ann"\}$' \
    "$exobus" send greet '{"name":"ann"}' --as client --wait-replies 3
expect "send takes the service type from EXOBUS_SERVICE" 0 "" \
    env EXOBUS_SERVICE=client "$exobus" send greet '{"name":"bob"}'
expect "send of malformed JSON fails typed" 1 "malformed_json" \
    "$exobus" send greet '{"name":' --as client
expect "send against the schema fails typed" 1 "schema_violation" \
    "$exobus" send greet '{"name":7}' --as client
expect "send of a name not in the sender's sends fails typed" 1 "not_declared" \
    "$exobus" send greet.ok '{}' --as client
expect "send as an unknown service type fails" 1 "unknown service type" \
    "$exobus" send greet '{}' --as nobody
expect "send waiting for replies that never come fails after the wait" 1 "no reply came within 500 ms" \
    "$exobus" send notify '' --as client --wait-replies 0.5
if ! eventually 10 bash -c "'$exobus' status --json | jq -e '.service_types[] | select(.name == \"greeter\") | .acked >= 3'"; then
    echo "FAIL status never counted the greeter's acks" >&2
    "$exobus" status >&2
    failures=$((failures + 1))
else
    echo "ok   status counts what the greeter acked"
fi

# Dead letters: the greeter rejects poison, dlq lists and requeues it.
expect "send of a poison message" 0 "" "$exobus" send greet '{"poison":true}' --as client
if eventually 10 bash -c "'$exobus' dlq list --type greeter | grep -qF poison"; then
    echo "ok   dlq list shows the rejected message"
else
    echo "FAIL dlq list never showed the rejected message" >&2
    "$exobus" dlq list --type greeter >&2
    failures=$((failures + 1))
fi
expect "dlq list counts the dead letters" 0 "1 dead letters of 'greeter'" "$exobus" dlq list --type greeter
expect "dlq list --json" 0 '"payload":"{\"poison\":true}"' "$exobus" dlq list --type greeter --json
if "$exobus" status --json |
    jq -e '.service_types[] | select(.name == "greeter") | .dead_lettered == 1' >/dev/null; then
    echo "ok   status counts the dead letter"
else
    echo "FAIL status does not count the dead letter: $("$exobus" status --json)" >&2
    failures=$((failures + 1))
fi
# Requeue with no greeter running, so the greeter cannot reject the message again while
# the daemon requeues (which would count it twice).
kill -TERM "$greeter_pid" && wait "$greeter_pid"
greeter_pid=
expect "dlq requeue moves it back" 0 "requeued 1 dead letters of 'greeter'" "$exobus" dlq requeue --type greeter
if "$exobus" status --json |
    jq -e '.service_types[] | select(.name == "greeter") | .queued == 1 and .dead_lettered == 0' >/dev/null; then
    echo "ok   the requeued message waits in the greeter's queue"
else
    echo "FAIL after the requeue: $("$exobus" status --json)" >&2
    failures=$((failures + 1))
fi
expect "dlq list is empty after the requeue" 0 "0 dead letters of 'greeter'" "$exobus" dlq list --type greeter
expect "dlq of an unknown type fails" 1 "unknown service type 'nosuch'" "$exobus" dlq list --type nosuch
expect "dlq needs a type" 2 "--type" "$exobus" dlq list

finish
