#!/usr/bin/env bash
# The main job: sets up, builds, then starts exobusd and the demo's services on a bus of
# their own, runs the web front end (a command with its reply, a refused bad payload, a
# streamed file copy with a progress bar, a fan-out to audit and mailer, the audit log being
# written in JavaScript, examples/demo/audit.js, and the mailer in Python,
# examples/demo/mailer.py), shows `exobus status`, and stops everything.
# EXOBUS_BUILD_DIR names an existing build to use as it is (the smoke test does that).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${EXOBUS_BUILD_DIR:-}" ]; then
  scripts/setup.sh
  build=build
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j "$(nproc)" --target exobusd exobus demo_users demo_subscriber demo_files demo_web exobus_python exobus_node
else
  build=$EXOBUS_BUILD_DIR
fi

bin=$build/examples/services
export EXOBUS_BUS="demo-$$"
EXOBUS_RUNTIME_DIR=$(mktemp -d /tmp/exobus-demo.XXXXXX)
export EXOBUS_RUNTIME_DIR
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$EXOBUS_RUNTIME_DIR"
}
trap cleanup EXIT

"$build/daemon/exobusd/exobusd" --config examples/demo/application.yml --remove-segment --log-level warn &
pids+=($!)
until [ -S "$EXOBUS_RUNTIME_DIR/$EXOBUS_BUS.sock" ]; do sleep 0.05; done

start() { "$@" & pids=("$!" "${pids[@]}"); }  # services stop before the daemon
start "$bin/demo_users"
# The audit log is written in JavaScript (examples/demo/audit.js), over the Node.js binding
# this build made; a sanitized build makes none, and the C++ subscriber plays it there.
if [ -d "$build/bindings/node/exobus" ]; then
  start env NODE_PATH="$build/bindings/node" node examples/demo/audit.js
else
  start "$bin/demo_subscriber" audit
fi
# The mailer is written in Python (examples/demo/mailer.py), over the binding this build
# made. A sanitized build makes none (a sanitized module cannot be loaded by a plain python):
# there the C++ subscriber plays the mailer.
if [ -d "$build/bindings/python/exobus" ]; then
  start env PYTHONPATH="$build/bindings/python" /usr/bin/python3 examples/demo/mailer.py
else
  start "$bin/demo_subscriber" mailer
fi
start "$bin/demo_files"

echo "== web sends commands through the bus"
"$bin/demo_web"
sleep 0.2
echo
echo "== exobus status"
"$build/cli/exobus" status
