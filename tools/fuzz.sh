#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, docs/fuzzing.md) with clang and runs each on a
# copy of its seed corpus.
#   tools/fuzz.sh [SECONDS [TARGET...]]   SECONDS per target (default 20); all targets by default
# Environment: CITYCARD_FUZZ_BUILD (build folder, default build-fuzz-clang),
#   CITYCARD_FUZZ_JOBS (targets run at once, default the number of cores).
# Exits non-zero when the build fails or any target finds a crash, a leak, a timeout or a
# broken invariant; the input that did it is left in BUILD/fuzz-run/TARGET/ and named in the log.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
shift || true
build=${CITYCARD_FUZZ_BUILD:-build-fuzz-clang}
jobs=${CITYCARD_FUZZ_JOBS:-$(nproc)}
TARGETS=(frame_decoder messages tap_record csv szt_file bill_file holder_registry fares tap_pack)
if (($#)); then TARGETS=("$@"); fi

# clang and its fuzzer runtime, and what the top CMakeLists.txt looks for when configuring.
PACKAGES=(clang libclang-rt-14-dev cmake ninja-build ccache pkg-config libssl-dev libsqlite3-dev
  libfmt-dev libasio-dev libcli11-dev nlohmann-json3-dev libspdlog-dev)

# shellcheck source=tools/install_packages.sh
source tools/install_packages.sh

# Only the fuzz targets and the parser sources they link are built (tests/fuzz/CMakeLists.txt).
# -O1 with line tables only: a quicker build than RelWithDebInfo's -O2 -g, and stack traces
# still name files and lines.
build_targets() {
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DCMAKE_CXX_COMPILER=clang++ \
    -DCITYCARD_FUZZ=ON -DCITYCARD_TESTS=OFF >/dev/null
  local names=()
  for t in "${TARGETS[@]}"; do names+=("${t}_fuzz"); done
  cmake --build "$build" -j "$(nproc)" --target "${names[@]}"
}

# run_target NAME: fuzzes on a fresh copy of the seeds, so that the repository's corpus
# only changes when someone copies inputs back on purpose.
run_target() {
  local name=$1
  local dir="$build/fuzz-run/$name"
  rm -rf "$dir"
  mkdir -p "$dir/corpus"
  cp tests/fuzz/corpus/"$name"/* "$dir/corpus/"
  local dict=()
  [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
  "$build/tests/fuzz/${name}_fuzz" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$dir/" "$dir/corpus" \
    >"$dir.log" 2>&1
}

summary() {  # summary NAME: the last status line of a run, and its speed.
  local log="$build/fuzz-run/$1.log"
  local last execs
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -E 's/ +/ /g' || true)
  execs=$(grep -E 'stat::average_exec_per_sec' "$log" | awk '{print $2}' || true)
  echo "fuzz: $1 ok: ${last:-no progress line} (${execs:-?} execs/s)"
}

install_packages "${PACKAGES[@]}"
# Paths under the checkout are hashed relative to it, so that a build in another clone (CI
# builds in a fresh one) finds the objects of an earlier build in ccache.
export CCACHE_BASEDIR="$PWD"
start=$SECONDS
build_targets
echo "fuzz: built in $((SECONDS - start)) s; running ${#TARGETS[@]} targets for ${seconds} s each, ${jobs} at a time" >&2

mkdir -p "$build/fuzz-run"
declare -A pids=()
failed=()
wait_one() {  # waits for the first of the running targets to end and records a failure.
  local done_pid status=0 name
  wait -n -p done_pid || status=$?
  for name in "${!pids[@]}"; do
    if [ "${pids[$name]}" = "$done_pid" ]; then
      unset "pids[$name]"
      if ((status == 0)); then summary "$name"; else failed+=("$name"); fi
      return
    fi
  done
}
for name in "${TARGETS[@]}"; do
  while ((${#pids[@]} >= jobs)); do wait_one; done
  run_target "$name" &
  pids[$name]=$!
done
while ((${#pids[@]})); do wait_one; done

if ((${#failed[@]})); then
  for name in "${failed[@]}"; do
    echo "fuzz: $name FAILED; the end of $build/fuzz-run/$name.log:" >&2
    tail -n 40 "$build/fuzz-run/$name.log" >&2
  done
  echo "fuzz: failed: ${failed[*]} (inputs in $build/fuzz-run/<target>/crash-*, timeout-*, oom-*, leak-*)" >&2
  exit 1
fi
echo "fuzz: all ${#TARGETS[@]} targets ran ${seconds} s without a finding ($((SECONDS - start)) s in all)"
