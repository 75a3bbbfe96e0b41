#!/usr/bin/env bash
# Cross-host figures in one run: ExoBus request/reply from alpha to beta through both
# bridges and a three-node JetStream cluster (file storage, three replicas), beside core
# NATS request/reply alone on the same cluster. Run it alone on the machine:
#   flock -x /tmp/exobus-cpu.lock bench/bridge/run_bridge_bench.sh build [ROUND_TRIPS] [BURST]
set -u
build=$1 round_trips=${2:-2000} burst=${3:-20000}
PROBE=$build/tests/bridge/bridge_probe EXOBUSD=$build/daemon/exobusd/exobusd BRIDGE=$build/bridge/exobus-bridge
bench=$build/bench/bridge/bridge_bench
APPLICATION=$(dirname "$0")/../../tests/bridge/application.yml
# shellcheck source=tests/bridge/hosts.sh
source "$(dirname "$0")/../../tests/bridge/hosts.sh"

start_nats_cluster
start_host alpha
start_host beta
start_as beta pricing pricing "$PROBE" serve-quotes
wait_ready pricing || { echo "pricing did not start" >&2; show_logs; exit 1; }
start_bridge alpha
start_bridge beta

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
on_host alpha env EXOBUS_SERVICE=web "$bench" bus-round-trip 100 >/dev/null || { show_logs; exit 1; }  # warm-up
on_host alpha env EXOBUS_SERVICE=web "$bench" bus-round-trip "$round_trips" || { show_logs; exit 1; }
"$bench" nats-round-trip "nats://127.0.0.1:${client_port[1]}" "$round_trips" || exit 1
on_host alpha env EXOBUS_SERVICE=web "$bench" bus-throughput "$burst" || { show_logs; exit 1; }
