#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds every flavour and runs
# ctest in each. Prints one closing line "N passed, N failed".
#   unit (ASan+UBSan) · unit under node (emscripten) · integration + browser · fuzz (short)
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh || exit 1
export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}

passed=0
failed=0
run() {  # run <flavour> <ctest args...>
  local flavour=$1; shift
  echo "=== build $flavour ==="
  if ! ./scripts/build.sh "$flavour"; then
    echo "BUILD FAILED: $flavour"
    failed=$((failed + 1))
    return
  fi
  echo "=== test $flavour ($*) ==="
  local log
  log=$(mktemp)
  (cd "build/$flavour" && ctest --output-on-failure "$@") 2>&1 | tee "$log"
  local p f
  p=$(sed -n 's/.* tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2 \1/p' "$log" | awk '{print $1-$2}')
  f=$(sed -n 's/.* tests passed, \([0-9]*\) tests failed out of.*/\1/p' "$log")
  if [[ -z "$p" ]]; then
    echo "NO TEST SUMMARY: $flavour"
    failed=$((failed + 1))
  else
    passed=$((passed + p))
    failed=$((failed + f))
  fi
  rm -f "$log"
}

run asan -L unit
run wasm -L unit
run release -L 'integration|unit|browser|sim'
run fuzz -L fuzz

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
