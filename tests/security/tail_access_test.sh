#!/usr/bin/env bash
# Who may attach exobus tail: a trace shows what a service type receives, payloads
# included, so the daemon grants it only for the types the user may run. As root, with a
# real group and user (created here, deleted after): the user, in the bus's group and
# allowed to run mail alone, is refused the trace of shop, and a tail of every type shows
# it mail's deliveries and nothing of shop's.
#   tail_access_test.sh EXOBUS EXOBUSD RELAY WITH_EXOBUSD CONFIG_TEMPLATE
set -u
if [[ ${1:-} == --inside ]]; then
    # Under with_exobusd.sh, as root: $2 exobus, $3 relay, $4 the user.
    exobus=$2 relay=$3 user=$4
    failures=0
    out=$(mktemp) err=$(mktemp) trace=$(mktemp)
    chmod 0644 "$trace"
    pids=()
    cleanup() {
        for pid in "${pids[@]}"; do
            kill -TERM "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
        done
        rm -f "$out" "$err" "$trace" "$out".*
    }
    trap cleanup EXIT
    # shellcheck source=tests/cli/checks.sh
    source "$(dirname "$0")/../cli/checks.sh"
    as_user() { runuser -u "$user" -- "$@" --bus "$EXOBUS_BUS" --runtime-dir "$EXOBUS_RUNTIME_DIR"; }

    expect "the user may not trace shop, which it may not run" 1 "permission_denied" as_user "$exobus" tail --type shop
    if grep -q "refused a tail of 'shop'" "$EXOBUS_TEST_DAEMON_LOG"; then
        echo "ok   the daemon logs the refusal"
    else
        echo "FAIL the daemon did not log the refused tail" >&2
        failures=$((failures + 1))
    fi
    for type in shop mail; do
        EXOBUS_SERVICE=$type setpriv --pdeathsig TERM "$relay" "$([[ $type == shop ]] && echo place || echo ping)" \
            >"$out.$type" 2>&1 &
        pids+=($!)
        eventually 10 grep -q ready "$out.$type" || { echo "FAIL $type did not start" >&2; cat "$out.$type" >&2; exit 1; }
    done
    as_user "$exobus" tail --count 2 >"$trace" 2>"$err" &
    tail_pid=$!
    pids+=("$tail_pid")
    eventually 10 grep -q "tail attached: pid [0-9]* traces 1 service types" "$EXOBUS_TEST_DAEMON_LOG" ||
        { echo "FAIL the user's tail did not attach:" >&2; cat "$err" >&2; exit 1; }
    expect "an order is sent to shop" 0 "" "$exobus" send order.place '{}' --as web
    for n in 1 2; do expect "ping $n is sent to mail" 0 "" "$exobus" send ping '{}' --as web; done
    if eventually 10 bash -c "! kill -0 $tail_pid 2>/dev/null" &&
        [[ $(grep -c -- '--\[ ping \]-> mail#0' "$trace") == 2 ]] && ! grep -q shop "$trace"; then
        echo "ok   the user's tail shows mail's two deliveries and nothing of shop's"
    else
        echo "FAIL the user's tail showed:" >&2
        cat "$trace" "$err" >&2
        failures=$((failures + 1))
    fi
    finish
fi

exobus=$1 exobusd=$2 relay=$3 with_exobusd=$4 template=$5
if (( EUID != 0 )); then
    echo "skipped: creating a user needs root"
    exit 77
fi
suffix=$$
group="exbtg$suffix" user="exbtu$suffix"
config_dir=$(mktemp -d)
cleanup_accounts() {
    userdel "$user" >/dev/null 2>&1
    groupdel "$group" >/dev/null 2>&1
    rm -rf "$config_dir"
}
trap cleanup_accounts EXIT
groupadd "$group" && useradd --no-create-home --shell /usr/sbin/nologin -G "$group" "$user" || exit 1
# The user runs the tail from wherever it is: the programs must be reachable by it.
sed -e "s/@GROUP@/$group/" -e "s/@USER@/$user/" "$template" >"$config_dir/application.yml"
chmod 0755 "$config_dir"
"$with_exobusd" "$exobusd" "$config_dir/application.yml" "$0" --inside "$exobus" "$relay" "$user"
