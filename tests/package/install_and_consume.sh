#!/usr/bin/env bash
# Installs this build into a temporary prefix, checks what the package holds (and that a
# build without tests needs none of their dependencies), then builds
# two outside projects against the installed files alone and runs them against the
# installed exobusd:
#   a C++ program through find_package(exobus) (exobus::client, then exobus::client_static),
#   a C program through pkg-config (exobus-c, shared, then static).
# Fails if a header, a library, a dependency or a file of the package is missing.
#
#   install_and_consume.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
source_dir=$1 build_dir=$2
here=$source_dir/tests/package
work=$(mktemp -d "${TMPDIR:-/tmp}/exobus-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

fail() { echo "package test: $*" >&2; exit 1; }
# Whether what COMMAND prints matches PATTERN. The output is read whole first: with
# pipefail, `COMMAND | grep -q` fails whenever grep stops reading before COMMAND ends
# writing (COMMAND then dies of SIGPIPE), which ldd sometimes does.
prints() { local pattern=$1 output; shift; output=$("$@"); grep -q -- "$pattern" <<<"$output"; }

cmake --install "$build_dir" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; fail "install failed"; }
lib=$prefix/lib
for file in bin/exobusd bin/exobus lib/libexobus.a lib/libexobus_c.a include/exobus/service.hpp \
            include/exobus/error.hpp include/exobus/version.hpp include/exobus.h \
            lib/cmake/exobus/exobus-config.cmake lib/cmake/exobus/exobus-config-version.cmake \
            lib/pkgconfig/exobus.pc lib/pkgconfig/exobus-c.pc share/man/man1/exobusd.1 share/man/man1/exobus.1 \
            share/doc/exobus/README.md share/doc/exobus/config.md share/doc/exobus/examples/systemd/exobusd@.service; do
  [[ -e $prefix/$file ]] || fail "the package has no $file"
done
for library in exobus exobus_c; do
  soname=$(readelf -d "$lib/lib$library.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
  [[ $soname == "lib$library.so.0" ]] || fail "lib$library.so has SONAME '$soname', not lib$library.so.0"
  [[ -e $lib/lib$library.so.0 && -e $lib/lib$library.so.0.1.0 ]] || fail "lib$library.so.0.1.0 or its link is missing"
done
# Only the public API is installed: the data plane and the control protocol stay inside.
[[ ! -e $prefix/include/exobus/shm && ! -e $prefix/include/exobus/control ]] || fail "internal headers are installed"
prints "^exobus 0.1.0$" "$prefix/bin/exobus" --version || fail "exobus --version"
prints "^exobusd 0.1.0$" "$prefix/bin/exobusd" --version || fail "exobusd --version"

# A build for users alone (BUILD_TESTING=OFF) looks for no test or benchmark dependency.
cmake -S "$source_dir" -B "$work/minimal" -G Ninja -DBUILD_TESTING=OFF >"$work/minimal.log" 2>&1 ||
  { cat "$work/minimal.log"; fail "configuring with -DBUILD_TESTING=OFF failed"; }
! grep -qiE '^(GTest|GMock|benchmark)_DIR|ZMQ' "$work/minimal/CMakeCache.txt" ||
  fail "a build with -DBUILD_TESTING=OFF still looks for GoogleTest, Google Benchmark or ZeroMQ"

# The C++ project: nothing of the source or build tree is visible to it.
for flavour in shared static; do
  static=$([[ $flavour == static ]] && echo ON || echo OFF)
  cmake -S "$here/cpp_consumer" -B "$work/cpp-$flavour" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_PREFIX_PATH="$prefix" -DEXOBUS_STATIC=$static >"$work/cpp-$flavour.log" 2>&1 &&
    cmake --build "$work/cpp-$flavour" >>"$work/cpp-$flavour.log" 2>&1 ||
    { cat "$work/cpp-$flavour.log"; fail "the C++ consumer ($flavour) does not build"; }
done
prints "$lib/libexobus.so.0" ldd "$work/cpp-shared/cpp_consumer" || fail "cpp consumer does not load the installed libexobus.so.0"
! prints libexobus ldd "$work/cpp-static/cpp_consumer" || fail "static cpp consumer still loads libexobus"

# The C project: pkg-config alone says how to compile and link.
export PKG_CONFIG_PATH=$lib/pkgconfig
cc -std=c11 -Wall -Werror "$here/c_consumer/main.c" -o "$work/c-shared" $(pkg-config --cflags --libs exobus-c) ||
  fail "the C consumer does not build with pkg-config --libs exobus-c"
# Static: the same link line with the archives picked by name (-l:libX.a), the rest from
# the .pc file's private libraries.
static_libs=$(pkg-config --static --libs exobus-c | sed 's/-lexobus_c/-l:libexobus_c.a/; s/-lexobus\b/-l:libexobus.a/')
cc -std=c11 -Wall -Werror "$here/c_consumer/main.c" -o "$work/c-static" $(pkg-config --cflags exobus-c) $static_libs ||
  fail "the C consumer does not link statically with pkg-config --static --libs exobus-c"
! prints libexobus ldd "$work/c-static" || fail "static C consumer still loads libexobus"

run_all() {
  "$work/cpp-shared/cpp_consumer" && "$work/cpp-static/cpp_consumer" &&
    LD_LIBRARY_PATH=$lib "$work/c-shared" && "$work/c-static"
}
export -f run_all
export work lib
"$source_dir/tests/cli/with_exobusd.sh" "$prefix/bin/exobusd" "$here/application.yml" bash -c run_all ||
  fail "the consumers did not talk through the installed exobusd"
echo "package test: installed, built against and ran: C++ (shared, static) and C (shared, static)"
