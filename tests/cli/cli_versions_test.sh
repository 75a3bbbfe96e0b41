#!/usr/bin/env bash
# exobus send's --version and --request-id, the replies it prints, and the version in dlq
# list, against a running bus of versions.yml (see with_exobusd.sh).
#   cli_versions_test.sh EXOBUS ECHO
# EXOBUS is the CLI; ECHO serves the 'echo' type and prints every message it receives.
set -u
exobus=$1 echo_service=$2
failures=0
out=$(mktemp) err=$(mktemp) received=$(mktemp)
echo_pid=

cleanup() {
    if [[ -n $echo_pid ]]; then
        kill -TERM "$echo_pid" 2>/dev/null
        wait "$echo_pid" 2>/dev/null
    fi
    rm -f "$out" "$err" "$received"
}
trap cleanup EXIT

# shellcheck source=tests/cli/checks.sh
source "$(dirname "$0")/checks.sh"

uuid='[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}'
request=5d3c1e2a-8b4f-4c6d-9e0a-1f2b3c4d5e6f

# A malformed --version or --request-id is a usage error: exit 2, the reason, nothing sent
# (these need no receiver).
expect "a malformed --version exits 2" 2 "version 'one.two' is not a number" \
    "$exobus" send echo '{"n":"bad-version"}' --as client --version one.two
expect "a negative --version exits 2" 2 "--version" \
    "$exobus" send echo '{"n":"bad-version"}' --as client --version=-1
expect "a --version with trailing text exits 2" 2 "version '1.2x' is not a number" \
    "$exobus" send echo '{"n":"bad-version"}' --as client --version 1.2x
expect "a malformed --request-id exits 2" 2 "UUID 'not-a-uuid' has 10 characters" \
    "$exobus" send echo '{"n":"bad-request"}' --as client --request-id not-a-uuid
expect "a --request-id with a non-hex digit exits 2" 2 "non-hex character" \
    "$exobus" send echo '{"n":"bad-request"}' --as client --request-id 5d3c1e2a-8b4f-4c6d-9e0a-1f2b3c4d5e6g

# The echo service, started after the refused sends: it must never see them.
die_with_us=()
command -v setpriv >/dev/null && die_with_us=(setpriv --pdeathsig TERM)
EXOBUS_SERVICE="echo" "${die_with_us[@]}" "$echo_service" >"$received" 2>&1 &
echo_pid=$!
if ! eventually 10 grep -q ready "$received"; then
    echo "FAIL the echo service did not start:" >&2
    cat "$received" >&2
    exit 1
fi

# received_line NAME REGEX: checks that the echo service printed a line matching REGEX (within 10 s).
received_line() {
    local name=$1 regex=$2
    if eventually 10 grep -qE -- "$regex" "$received"; then
        echo "ok   $name"
    else
        echo "FAIL $name: no line of the echo service matches '$regex'; it printed:" >&2
        sed 's/^/  echo: /' "$received" >&2
        failures=$((failures + 1))
    fi
}

# The version and the request id reach the receiver as sent.
expect "send --version 1.2" 0 "" "$exobus" send echo '{"n":"v12","silent":true}' --as client --version 1.2
received_line "the receiver sees version 1.2" "^received echo version=1\\.2 request=$uuid \\{\"n\":\"v12\""
expect "send without --version" 0 "" "$exobus" send echo '{"n":"vdefault","silent":true}' --as client
received_line "the receiver sees the default version, 1" "^received echo version=1 request=$uuid \\{\"n\":\"vdefault\""
expect "send --request-id" 0 "" \
    "$exobus" send echo '{"n":"rid","silent":true}' --as client --version 2.5 --request-id "$request"
received_line "the receiver sees the request id and version given" \
    "^received echo version=2\\.5 request=$request \\{\"n\":\"rid\""
expect "send --request-id in upper case" 0 "" \
    "$exobus" send echo '{"n":"rid-upper","silent":true}' --as client --request-id "${request^^}"
received_line "the receiver sees the request id in canonical form" \
    "^received echo version=1 request=$request \\{\"n\":\"rid-upper\""

# An undeclared version is refused by the sender: a typed error, exit 1, nothing sent.
expect "send of an undeclared version fails typed" 1 "send: unknown_version: " \
    "$exobus" send echo '{"n":"v3","silent":true}' --as client --version 3
expect "the unknown_version error names the known versions" 1 "known: 1, 1.2, 2.5" \
    "$exobus" send echo '{"n":"v3","silent":true}' --as client --version 3

# Replies, each with its version and request id.
expect_line "a reply is printed with its version" 0 "^echo\\.ok version=2\\.5 request=$uuid \\{\"n\":\"reply25\"\\}$" \
    "$exobus" send echo '{"n":"reply25"}' --as client --version 2.5 --wait-replies 3
expect_line "a reply is printed with the request id given" 0 \
    "^echo\\.ok version=1\\.2 request=$request \\{\"n\":\"reply-rid\"\\}$" \
    "$exobus" send echo '{"n":"reply-rid"}' --as client --version 1.2 --request-id "$request" --wait-replies 3
expect_line "a reply without --request-id belongs to the command's new request" 0 \
    "^echo\\.ok version=1 request=$uuid \\{\"n\":\"reply1\"\\}$" \
    "$exobus" send echo '{"n":"reply1"}' --as client --wait-replies 3
if grep -qF "request=$request" "$out"; then
    report_failure "a new request is not the last one given" "the reply carries the earlier --request-id" \
        "$exobus" send echo '{"n":"reply1"}' --as client --wait-replies 3
else
    echo "ok   a new request is not the last one given"
fi

# An outcome named "timeout" is a reply; a timeout is the end of the wait with no reply.
expect_line "an outcome named timeout is printed as a reply" 0 \
    "^timeout version=1 request=$uuid \\{\"note\":\"an outcome named timeout\"\\}$" \
    "$exobus" send trick '' --as client --wait-replies 3
if grep -qF "no reply came" "$out" "$err"; then
    report_failure "an outcome named timeout is not reported as a timeout" "it was" \
        "$exobus" send trick '' --as client --wait-replies 3
else
    echo "ok   an outcome named timeout is not reported as a timeout"
fi
expect "a real timeout fails with the timeout code" 1 "send: timeout: 'echo' was sent but no reply came within 500 ms" \
    "$exobus" send echo '{"n":"unanswered","silent":true}' --as client --wait-replies 0.5
if [[ -s $out ]]; then
    report_failure "a real timeout prints no reply line" "stdout is not empty" \
        "$exobus" send echo '{"n":"unanswered","silent":true}' --as client --wait-replies 0.5
else
    echo "ok   a real timeout prints no reply line"
fi

# None of the refused sends reached the receiver.
if grep -qE '"n":"(bad-version|bad-request|v3)"' "$received"; then
    echo "FAIL a refused send reached the receiver:" >&2
    grep -E '"n":"(bad-version|bad-request|v3)"' "$received" | sed 's/^/  echo: /' >&2
    failures=$((failures + 1))
else
    echo "ok   no refused send reached the receiver"
fi

# Dead letters list their version.
expect "send of a poison message in version 1.2" 0 "" \
    "$exobus" send echo '{"poison":true}' --as client --version 1.2
if eventually 10 bash -c "'$exobus' dlq list --type echo | grep -qF poison"; then
    echo "ok   dlq list shows the rejected message"
else
    echo "FAIL dlq list never showed the rejected message" >&2
    "$exobus" dlq list --type echo >&2
    failures=$((failures + 1))
fi
expect_line "dlq list has a VERSION column" 0 '^ID +NAME +VERSION +SENDER +PAYLOAD$' \
    "$exobus" dlq list --type echo
expect_line "dlq list shows the dead letter's version" 0 "^$uuid +echo +1\\.2 +client +\\{\"poison\":true\\}$" \
    "$exobus" dlq list --type echo

finish
