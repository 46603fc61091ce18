#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for citycard and runs one job:
#   tools/run.sh demo [ARGS...]   build, then run `citycard demo`
#   tools/run.sh test             build, then run every test (ctest)
#   tools/run.sh sanitize         build with ASan+UBSan in build-asan/, then run every test
#   tools/run.sh build            build only
# Installing packages is skipped when they are already there, so a second run is fast.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(g++ cmake ninja-build ccache pkg-config libssl-dev libsqlite3-dev libfmt-dev catch2
  libasio-dev libcli11-dev nlohmann-json3-dev libspdlog-dev postgresql)

# shellcheck source=tools/install_packages.sh
source tools/install_packages.sh

build() {  # build DIR [CMAKE ARGS...]
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}

run_tests() {  # run_tests DIR
  ctest --test-dir "$1" --output-on-failure -j "$(nproc)" --timeout 600
}

job=${1:-test}
shift || true
install_packages "${PACKAGES[@]}"
case "$job" in
  demo) build build && exec ./build/citycard demo "$@" ;;
  test) build build && run_tests build ;;
  sanitize) build build-asan -DCITYCARD_SANITIZE=ON && run_tests build-asan ;;
  build) build build ;;
  *) echo "usage: tools/run.sh demo|test|sanitize|build" >&2; exit 2 ;;
esac
