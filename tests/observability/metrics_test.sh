#!/usr/bin/env bash
# exobusd's Prometheus metrics against a running bus (see tests/cli/with_exobusd.sh): a known
# workload through real processes, then the endpoint scraped over HTTP and parsed with
# prometheus_client's parser must show exactly its figures.
#   metrics_test.sh EXOBUS EXOBUSD GREETER SCRAPER
set -u
exobus=$1 exobusd=$2 greeter=$3 scraper=$4
failures=0
out=$(mktemp) err=$(mktemp) scraped=$(mktemp)
greeter_pid= other_daemon= other_dir=

cleanup() {
    for pid in $greeter_pid $other_daemon; do
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    [[ -n $other_dir ]] && rm -rf "$other_dir"
    rm -f "$out" "$err" "$scraped"
}
trap cleanup EXIT

# shellcheck source=tests/cli/checks.sh
source "$(dirname "$0")/../cli/checks.sh"

address=$("$exobus" status --json | jq -r '.metrics // empty')
if [[ ! $address =~ ^127\.0\.0\.1:[1-9][0-9]*$ ]]; then
    echo "FAIL status names no metrics address on loopback (got '$address')" >&2
    exit 1
fi
echo "ok   status names the metrics address $address"
expect "status prints where the metrics are served" 0 "metrics on http://$address/metrics" "$exobus" status

# has SAMPLE: the last scrape holds this exact line.
has() { grep -qxF -- "$1" "$scraped"; }
# scrape_until NAME SAMPLE...: scrapes (the daemon publishes once a second) until every
# sample is there, for at most 10 s.
scrape_until() {
    local name=$1
    shift
    for _ in $(seq 40); do
        if "$scraper" "$address" >"$scraped" 2>"$err"; then
            local all=1
            for sample in "$@"; do has "$sample" || all=0; done
            (( all )) && { echo "ok   $name"; return 0; }
        fi
        sleep 0.25
    done
    echo "FAIL $name; the last scrape:" >&2
    cat "$scraped" "$err" >&2
    failures=$((failures + 1))
    return 1
}

scrape_until "an idle bus parses and shows its types, buffers and no instances" \
    'exobus_instances{type="greeter"} 0' 'exobus_instances{type="client"} 0' \
    'exobus_messages_delivered_total{type="greeter"} 0' 'exobus_queue_depth{type="greeter"} 0' \
    'exobus_pool_chunks{size="256"} 512' 'exobus_pool_chunks{size="4096"} 128' \
    'exobus_pool_chunks_in_use{size="256"} 0' 'exobus_replies_dropped_total{} 0'

# Three notifications while no greeter runs wait in its queue.
for n in 1 2 3; do
    expect "notify $n is sent while no greeter runs" 0 "" "$exobus" send notify '{}' --as client
done
scrape_until "the queue depth counts what waits for a type without instances" \
    'exobus_queue_depth{type="greeter"} 3' 'exobus_messages_sent_total{type="client"} 3' \
    'exobus_pool_chunks_in_use{size="256"} 3'

# They wait at least this long, so their delays lie past the 268 ms bound below.
sleep 0.3
start_greeter

# Five requests, each answered; one poison, rejected into the dead letters.
for n in 1 2 3 4 5; do
    expect "greet $n is answered" 0 "hello n$n" "$exobus" send greet "{\"name\":\"n$n\"}" --as client --wait-replies 1
done
expect "a poison greeting is sent" 0 "" "$exobus" send greet '{"poison":true}' --as client

# Every exobus send was an instance of client that has left: its counts stay in its type's.
# The five replies are the greeter's sends; a reply goes to its requester's reply handler and
# is not a delivery.
scrape_until "the counters match the workload, the instances that left included" \
    'exobus_messages_sent_total{type="client"} 9' 'exobus_messages_delivered_total{type="greeter"} 9' \
    'exobus_messages_acked_total{type="greeter"} 8' 'exobus_messages_sent_total{type="greeter"} 5' \
    'exobus_messages_redelivered_total{type="greeter"} 0' \
    'exobus_dead_letters{type="greeter"} 1' 'exobus_queue_depth{type="greeter"} 0' \
    'exobus_messages_in_flight{type="greeter"} 0' 'exobus_instances{type="greeter"} 1' \
    'exobus_instances{type="client"} 0' 'exobus_pool_chunks_in_use{size="256"} 1' \
    'exobus_replies_total{outcome="greet.ok",type="greeter"} 5'

# Senders stamp their messages while metrics are served: each of the nine deliveries has its
# queueing delay, the three that waited for the greeter among the slowest.
scrape_until "the queueing delays of the nine deliveries, the three that waited above 268 ms" \
    'exobus_queueing_delay_seconds_count{type="greeter"} 9' \
    'exobus_queueing_delay_seconds_bucket{le="+Inf",type="greeter"} 9' \
    'exobus_queueing_delay_seconds_bucket{le="0.268435456",type="greeter"} 6' \
    'exobus_queueing_delay_seconds_count{type="client"} 0'

# Each stamped delivery also has its handler time, from its take to its settlement (the
# poison's reject included); a handler that sleeps 300 ms lies past the 268 ms bound.
expect "a slow notification is sent" 0 "" "$exobus" send notify '{"sleep_ms":300}' --as client
scrape_until "the handler times of the ten deliveries, the slow one above 268 ms" \
    'exobus_handler_seconds_count{type="greeter"} 10' \
    'exobus_handler_seconds_bucket{le="+Inf",type="greeter"} 10' \
    'exobus_handler_seconds_bucket{le="0.268435456",type="greeter"} 9' \
    'exobus_handler_seconds_count{type="client"} 0' 'exobus_messages_acked_total{type="greeter"} 9'

# The greeter stopped: its type's counters do not go back.
kill -TERM "$greeter_pid" && wait "$greeter_pid"
greeter_pid=
scrape_until "a type's counters survive its last instance" \
    'exobus_instances{type="greeter"} 0' 'exobus_messages_delivered_total{type="greeter"} 10' \
    'exobus_messages_acked_total{type="greeter"} 9'

# A second daemon asked to serve metrics on the port the first one holds stops at start
# with an error naming the address and the key.
other_dir=$(mktemp -d "${TMPDIR:-/tmp}/exobus-test.XXXXXX")
sed "s/metrics-address: \"127.0.0.1:0\"/metrics-address: \"$address\"/" \
    "$(dirname "$0")/application.yml" >"$other_dir/application.yml"
expect "a daemon whose metrics port is taken stops with an error naming it" 1 \
    "cannot serve metrics on $address (bus.metrics-address)" \
    "$exobusd" --config "$other_dir/application.yml" --bus "obs-other-$$" --runtime-dir "$other_dir" --remove-segment

finish
