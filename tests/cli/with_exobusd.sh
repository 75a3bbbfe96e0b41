#!/usr/bin/env bash
# Runs a command against a real exobusd on a private bus, then stops the daemon and removes
# the bus's files, also when the command or the daemon fails.
#
#   with_exobusd.sh EXOBUSD CONFIG COMMAND [ARGS...]
#
# The bus is named "<config name>-<pid>" in a fresh runtime directory; the command sees it in
# $EXOBUS_BUS and $EXOBUS_RUNTIME_DIR, and the daemon's log in $EXOBUS_TEST_DAEMON_LOG. The
# exit code is the command's (or 1 if the daemon did not come up).
set -u
exobusd=$1 config=$2
shift 2

bus="t$$-$(basename "$(dirname "$config")")"
bus=${bus//[^A-Za-z0-9_-]/-}
runtime_dir=$(mktemp -d "${TMPDIR:-/tmp}/exobus-test.XXXXXX")
log="$runtime_dir/exobusd.log"
daemon=

cleanup() {
    if [[ -n $daemon ]] && kill -0 "$daemon" 2>/dev/null; then
        kill -TERM "$daemon" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$daemon" 2>/dev/null
        wait "$daemon" 2>/dev/null
    fi
    rm -rf "$runtime_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# If this script is killed outright (a ctest timeout), the kernel still stops the daemon,
# which releases the bus's memory on the way out (--remove-segment); removing the runtime
# directory ends the process that keeps it between daemons.
die_with_us=()
command -v setpriv >/dev/null && die_with_us=(setpriv --pdeathsig TERM)
"${die_with_us[@]}" "$exobusd" --config "$config" --bus "$bus" --runtime-dir "$runtime_dir" --reset \
    --remove-segment >"$log" 2>&1 &
daemon=$!
for _ in $(seq 100); do
    [[ -S "$runtime_dir/$bus.sock" ]] && grep -q "serving bus" "$log" && break
    kill -0 "$daemon" 2>/dev/null || break
    sleep 0.1
done
if ! grep -q "serving bus" "$log"; then
    echo "with_exobusd: exobusd did not start; its log:" >&2
    cat "$log" >&2
    exit 1
fi

export EXOBUS_BUS=$bus EXOBUS_RUNTIME_DIR=$runtime_dir EXOBUS_TEST_DAEMON_LOG=$log
"$@"
code=$?
if (( code != 0 )); then
    echo "--- exobusd log ---" >&2
    cat "$log" >&2
fi
exit $code
