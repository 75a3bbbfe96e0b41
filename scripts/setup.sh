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
  nats-server libnats-dev
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
