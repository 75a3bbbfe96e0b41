# shellcheck shell=bash disable=SC2154  # out, err and failures are the caller's
# The checks the CLI test scripts share; source it after setting
#   out, err   two scratch files (the last command's stdout and stderr)
#   failures   the count of failed checks, 0 at the start
#   greeter    the demo greeter program (for start_greeter)
# and end the script with `finish`.

# expect NAME EXIT_CODE TEXT COMMAND...: runs COMMAND, checks its exit code and that its
# stdout and stderr together contain TEXT ("" for anything).
expect() {
    local name=$1 expected=$2 text=$3
    shift 3
    "$@" >"$out" 2>"$err"
    local code=$?
    if (( code != expected )) || { [[ -n $text ]] && ! grep -qF -- "$text" "$out" "$err"; }; then
        report_failure "$name" "exit $code (expected $expected), output should contain '$text'" "$@"
        return 1
    fi
    echo "ok   $name"
}

# expect_line NAME EXIT_CODE REGEX COMMAND...: as expect, but some line of stdout or stderr
# must match the extended regular expression REGEX.
expect_line() {
    local name=$1 expected=$2 regex=$3
    shift 3
    "$@" >"$out" 2>"$err"
    local code=$?
    if (( code != expected )) || ! grep -qE -- "$regex" "$out" "$err"; then
        report_failure "$name" "exit $code (expected $expected), a line should match '$regex'" "$@"
        return 1
    fi
    echo "ok   $name"
}

# report_failure NAME WHY COMMAND...: counts a failed check and shows the last output.
report_failure() {
    local name=$1 why=$2
    shift 2
    echo "FAIL $name: $why" >&2
    echo "  command: $*" >&2
    sed 's/^/  stdout: /' "$out" >&2
    sed 's/^/  stderr: /' "$err" >&2
    failures=$((failures + 1))
}

# eventually SECONDS COMMAND...: retries COMMAND (quietly) until it succeeds.
eventually() {
    local bound=$1
    shift
    for _ in $(seq $((bound * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# start_greeter: starts $greeter in the background as an instance of the type greeter (it
# dies with the test), sets greeter_pid, and waits until it says ready; exits if it never does.
start_greeter() {
    local die_with_us=()
    command -v setpriv >/dev/null && die_with_us=(setpriv --pdeathsig TERM)
    EXOBUS_SERVICE=greeter "${die_with_us[@]}" "$greeter" >"$out.greeter" 2>&1 &
    greeter_pid=$!
    if ! eventually 10 grep -q ready "$out.greeter"; then
        echo "FAIL the greeter did not start:" >&2
        cat "$out.greeter" >&2
        exit 1
    fi
    rm -f "$out.greeter"
}

# finish: the summary line and the exit code.
finish() {
    if (( failures > 0 )); then
        echo "$failures checks failed" >&2
        exit 1
    fi
    echo "all checks passed"
    exit 0
}
