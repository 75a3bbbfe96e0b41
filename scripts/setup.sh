#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, test and run ExoBus.
# Idempotent: packages already present are not touched, and apt is only asked when needed.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  rapidjson-dev libconcurrentqueue-dev libyaml-cpp-dev
  libspdlog-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  libzmq3-dev cppzmq-dev gnuplot-nox help2man
  pybind11-dev python3-pybind11 python3-pytest python3-zmq python3-setuptools python3-pip
  prometheus-cpp-dev python3-prometheus-client tmux jq
  nats-server libnats-dev
)

missing=()
for package in "${packages[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$package" 2>/dev/null) == "install ok installed" ]] || missing+=("$package")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Node.js binding's headers: node-addon-api from the npm registry, in npm's global folder
# (Debian's node-addon-api would bring Debian's older Node.js headers over the machine's). The
# install also leaves it in npm's cache, from which `npm install --offline` of the binding
# takes it (tests/node/npm_install.test.js).
node_modules=$(npm root -g)
if [ ! -f "$node_modules/node-addon-api/napi.h" ]; then
  echo "setup: installing node-addon-api (npm)"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" npm install --global --no-audit --no-fund node-addon-api@8 >/dev/null
fi
