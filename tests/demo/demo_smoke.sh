#!/usr/bin/env bash
# Runs the README's demo against this build and checks that every conversation in it
# happened: command and reply, refused bad payload, fan-out, streamed replies, status.
set -euo pipefail
source_dir=$1 build_dir=$2
output=$(EXOBUS_BUILD_DIR="$build_dir" timeout 60 "$source_dir/scripts/demo.sh" 2>&1) || {
  echo "$output"
  echo "demo failed"
  exit 1
}
echo "$output"
for expected in "web: user.create.ok" "refused before it leaves: payload breaks the schema" \
                "audit: user.created" "mailer: user.created" "copying [##########] done" \
                "SERVICE TYPE" "instances of files:"; do
  grep -qF -- "$expected" <<<"$output" || { echo "missing from the demo's output: $expected"; exit 1; }
done
