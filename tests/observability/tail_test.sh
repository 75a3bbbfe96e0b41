#!/usr/bin/env bash
# exobus tail against a running bus (see tests/cli/with_exobusd.sh, tail.yml) with real
# service processes (relay.cpp): the lines of a known workload in order, with the names
# and the translation; --request following one request through three services; a flood
# that makes the tail report drops while every message is still delivered; and a killed
# tail's lease running out, which ends the tracing.
#   tail_test.sh EXOBUS RELAY
set -u
exobus=$1 relay=$2
failures=0
out=$(mktemp) err=$(mktemp) trace=$(mktemp) followed=$(mktemp) flood_trace=$(mktemp) mail_out=$(mktemp)
relay_pids=() tail_pids=()

cleanup() {
    for pid in "${tail_pids[@]}" "${relay_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    rm -f "$out" "$err" "$trace" "$followed" "$flood_trace" "$mail_out" "$out".relay.* \
        "$trace.err" "$followed.err" "$flood_trace.err"
}
trap cleanup EXIT

# shellcheck source=tests/cli/checks.sh
source "$(dirname "$0")/../cli/checks.sh"

die_with_us=()
command -v setpriv >/dev/null && die_with_us=(setpriv --pdeathsig TERM)

# start_relay TYPE OUTPUT ARGS...: an instance of TYPE running relay ARGS, ready.
start_relay() {
    local type=$1 output=$2
    shift 2
    EXOBUS_SERVICE=$type "${die_with_us[@]}" "$relay" "$@" >"$output" 2>&1 &
    relay_pids+=($!)
    if ! eventually 10 grep -q ready "$output"; then
        echo "FAIL the $type relay did not start:" >&2
        cat "$output" >&2
        exit 1
    fi
}

# start_tail OUTPUT ARGS...: exobus tail ARGS in the background, attached (the daemon says
# so in its log); sets tail_pid.
start_tail() {
    local output=$1
    shift
    "${die_with_us[@]}" "$exobus" tail "$@" >"$output" 2>"$output.err" &
    tail_pid=$!
    tail_pids+=("$tail_pid")
    if ! eventually 10 grep -q "tail attached: pid $tail_pid " "$EXOBUS_TEST_DAEMON_LOG"; then
        echo "FAIL exobus tail $* did not attach:" >&2
        cat "$output.err" >&2
        exit 1
    fi
}

# check NAME COMMAND...: a check that passes when COMMAND succeeds (shows the trace if not).
check() {
    local name=$1
    shift
    if "$@" >/dev/null; then
        echo "ok   $name"
    else
        echo "FAIL $name; the trace:" >&2
        cat "$trace" >&2
        failures=$((failures + 1))
    fi
}

expect "tail without a daemon fails typed" 1 "daemon_not_running" "$exobus" tail --bus "no-daemon-$$"
expect "tail of an unknown type is refused" 1 "unknown service type 'nobody'" "$exobus" tail --type nobody
expect "tail --request wants a UUID" 2 "--request" "$exobus" tail --request 42

start_relay shop "$out.relay.shop" place stock.reserve
start_relay stock "$out.relay.stock" stock.reserve mail.confirm
start_relay mail "$mail_out" mail.confirm,ping
start_relay prices "$out.relay.prices" price.get reply:price.get.ok

start_tail "$trace" --json --payload
request=123e4567-e89b-42d3-a456-426614174000
start_tail "$followed" --request "$request" --count 3

# A known workload: three pings, then one order through three services.
for n in 1 2 3; do
    expect "ping $n is sent" 0 "" "$exobus" send ping "{\"ping\":$n}" --as web
done
expect "an order is sent in request $request" 0 "" \
    "$exobus" send order.place '{"order":7}' --as web --request-id "$request"
expect "a ping mail releases once is sent" 0 "" "$exobus" send ping '{"release-once":4}' --as web
expect "web asks prices and gets the reply" 0 "price.get.ok" "$exobus" send price.get '{"sku":9}' --as web --wait-replies 5
eventually 10 bash -c "[[ \$(grep -c '\"name\":\"mail.confirm\"' '$trace') == 1 && \$(grep -c 'release-once' '$trace') == 2 &&
    \$(grep -c '\"name\":\"price.get.ok\"' '$trace') == 1 ]]"

check "the trace shows the three pings to mail in the order they were sent" \
    jq -se '[.[] | select(.name == "ping" and (.payload | test("ping"))) | "\(.sender) \(.receiver) \(.payload)"]
            == ["web mail {\"ping\":1}", "web mail {\"ping\":2}", "web mail {\"ping\":3}"]' "$trace"
check "a traced ping carries its queueing delay, its ids and no translation" \
    jq -se '[.[] | select(.name == "ping" and (.payload | test("ping")))] | all(.delay_ns != null and .redelivered == false
            and .delivery == 1 and (has("internal_name") | not) and (.request_id | length) == 36 and .reply == false)' "$trace"
check "a released ping is traced twice, the second time as redelivered, delivery 2" \
    jq -se '[.[] | select(.payload == "{\"release-once\":4}") | [.redelivered, .delivery]] == [[false, 1], [true, 2]]' "$trace"
check "the reply is traced as a reply, from prices to the requesting web instance, in the request" \
    jq -se '[.[] | select(.name | startswith("price.get"))] | length == 2
            and .[0].reply == false and .[0].sender == "web" and .[0].receiver == "prices"
            and .[1].reply == true and .[1].sender == "prices" and .[1].receiver == "web"
            and .[1].request_id == .[0].request_id and .[1].delay_ns != null' "$trace"
check "the order reached shop under shop's own name for it" \
    jq -se '[.[] | select(.name == "order.place")] | length == 1 and .[0].internal_name == "place"
            and .[0].sender == "web" and .[0].receiver == "shop" and .[0].request_id == "'"$request"'"' "$trace"
check "the order's workflow is traced hop by hop, in order, in its request" \
    bash -c "[[ \$(jq -r 'select(.request_id == \"$request\") | \"\(.sender)>\(.receiver):\(.name)\"' '$trace' | tr '\n' ' ') == \
'web>shop:order.place shop>stock:stock.reserve stock>mail:mail.confirm ' ]]"

# --request follows the one request, and --count stops the tail after its three lines.
if eventually 10 bash -c "! kill -0 $tail_pid 2>/dev/null"; then
    echo "ok   tail --count 3 stops after three lines"
else
    echo "FAIL tail --count 3 still runs" >&2
    failures=$((failures + 1))
fi
delay='\([0-9.]+(ns|us|ms|s)\)'
check "tail --request shows exactly the request's three hops, in ExoCom's form" \
    bash -c "[[ \$(wc -l <'$followed') == 3 ]] &&
             grep -qE '^web#[0-9]+ --\[ order\.place \]-\[ place \]-> shop#0 $delay\$' <(sed -n 1p '$followed') &&
             grep -qE '^shop#0 --\[ stock\.reserve \]-> stock#0 $delay\$' <(sed -n 2p '$followed') &&
             grep -qE '^stock#0 --\[ mail\.confirm \]-> mail#0 $delay\$' <(sed -n 3p '$followed')" ||
    cat "$followed" >&2

# A flood from web to mail: the tail falls behind and says how many lines it dropped, and
# mail still receives every message.
flooded=20000
start_tail "$flood_trace" --type mail --name ping
EXOBUS_SERVICE=web "${die_with_us[@]}" "$relay" --flood ping "$flooded" >"$out.relay.flood" 2>&1
check "the flood's $flooded messages are all sent" grep -q "^sent $flooded\$" "$out.relay.flood"
expected=$((3 + 1 + flooded + 1))
if eventually 30 bash -c "'$exobus' status --json | jq -e '.service_types[] | select(.name == \"mail\") | .acked == $expected'"; then
    echo "ok   mail received and acknowledged every message of the flood"
else
    echo "FAIL mail did not acknowledge all $expected messages:" >&2
    "$exobus" status >&2
    failures=$((failures + 1))
fi
# flood_seen: true once the tail accounted for every message of the flood, shown or dropped.
flood_seen() {
    dropped=$(sed -nE 's/^\.\.\. dropped ([0-9]+) lines$/\1/p' "$flood_trace" | awk '{ sum += $1 } END { print sum + 0 }')
    shown=$(grep -c -- '--\[ ping \]-> mail#0' "$flood_trace")
    (( dropped + shown == flooded ))
}
eventually 10 flood_seen
flood_seen
if (( dropped > 0 && shown > 0 && dropped + shown == flooded )); then
    echo "ok   the tail shows $shown lines of the flood and says it dropped the other $dropped"
else
    echo "FAIL the flood's tail showed $shown lines and dropped $dropped of $flooded:" >&2
    head -20 "$flood_trace" >&2
    failures=$((failures + 1))
fi

# A tail stopped past its lease loses it, and attaches again once it runs: it says that
# lines are missing, and traces what follows.
stopped=$tail_pid
kill -STOP "$stopped"
if eventually 10 grep -q "tail of pid $stopped detached (its lease ran out)" "$EXOBUS_TEST_DAEMON_LOG"; then
    kill -CONT "$stopped"
    if eventually 10 grep -q "attached again, the lines in between are missing" "$flood_trace.err" &&
        eventually 10 bash -c "[[ \$(grep -c 'tail attached: pid $stopped ' '$EXOBUS_TEST_DAEMON_LOG') == 2 ]]" &&
        expect "a ping is sent after the stopped tail attached again" 0 "" "$exobus" send ping '{}' --as web &&
        eventually 10 bash -c "[[ \$(grep -c -- '--\[ ping \]-> mail#0' '$flood_trace') -gt $shown ]]"; then
        echo "ok   a tail stopped past its lease attaches again, says lines are missing, and traces on"
    else
        echo "FAIL the stopped tail did not attach again and trace on:" >&2
        cat "$flood_trace.err" >&2
        failures=$((failures + 1))
    fi
else
    kill -CONT "$stopped"
    echo "FAIL the stopped tail's lease did not run out" >&2
    failures=$((failures + 1))
fi

# A killed tail stops renewing: its lease runs out, and with the last one the tracing ends.
kill -TERM "${tail_pids[0]}" && wait "${tail_pids[0]}" 2>/dev/null
killed=$tail_pid
kill -KILL "$killed"
wait "$killed" 2>/dev/null
if eventually 10 bash -c "[[ \$(grep -c 'tail of pid $killed detached (its lease ran out)' '$EXOBUS_TEST_DAEMON_LOG') == 2 ]]" &&
    eventually 10 grep -q "tail of pid ${tail_pids[0]} detached" "$EXOBUS_TEST_DAEMON_LOG" &&
    eventually 5 grep -q "no tail attached any more: instances stop tracing" "$EXOBUS_TEST_DAEMON_LOG"; then
    echo "ok   the killed tail's lease ran out and the daemon stopped the tracing"
else
    echo "FAIL the daemon did not detach the killed tail:" >&2
    grep tail "$EXOBUS_TEST_DAEMON_LOG" >&2
    failures=$((failures + 1))
fi
tail_pids=()

finish
