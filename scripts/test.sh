#!/usr/bin/env bash
# The whole test suite: installs what it needs (Debian packages, then the
# browser test's npm packages in build/npm), builds every flavour and runs
# ctest in each. Ends with exactly one line "N passed, N failed, N skipped".
#   unit (ASan+UBSan) · unit + fuzz under node (emscripten, the package's JavaScript) · integration + browser · fuzz (short)
# Each test counts once, from ctest's JUnit report: passed, failed, or skipped
# (exit 77 = SKIP_RETURN_CODE: the machine cannot run it). With CI=true
# (.ci/run sets it) a skipped test counts as failed: CI can run every test.
# A flavour that does not build, or whose ctest ran no test or left no
# report, counts as one failure.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh || exit 1
export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}
ci=false
if [[ ${CI:-} == true ]]; then ci=true; fi

passed=0
failed=0
skipped=0
notes=()
if ! ./scripts/npm-deps.sh; then
  # The browser test then reports a skip (a failure under CI=true).
  echo "NPM DEPS FAILED: scripts/npm-deps.sh"
  notes+=("npm-deps.sh failed")
  failed=$((failed + 1))
fi

run() {  # run <flavour> <ctest args...>
  local flavour=$1; shift
  echo "=== build $flavour ==="
  if ! ./scripts/build.sh "$flavour"; then
    echo "BUILD FAILED: $flavour"
    notes+=("build $flavour failed")
    failed=$((failed + 1))
    return
  fi
  echo "=== test $flavour ($*) ==="
  local junit counts rc
  junit=$(mktemp --suffix=.xml)
  (cd "build/$flavour" && ctest --output-on-failure --no-tests=error --output-junit "$junit" "$@")
  rc=$?
  if ! counts=$(python3 scripts/ctest-counts.py "$junit"); then
    echo "NO TEST REPORT: $flavour (ctest exit $rc)"
    notes+=("$flavour: no test report")
    failed=$((failed + 1))
    rm -f "$junit"
    return
  fi
  rm -f "$junit"
  local p f s
  read -r p f s <<<"$(tail -n 1 <<<"$counts")"
  sed '$d' <<<"$counts" | sed "s/^/  $flavour: /"
  if ((p + f + s == 0)); then
    echo "NO TESTS RAN: $flavour"
    notes+=("$flavour: no test ran")
    f=1
  elif ((rc != 0 && f == 0)); then
    # ctest failed although no test did (e.g. it was interrupted).
    echo "CTEST FAILED: $flavour (exit $rc) with no failed test in its report"
    notes+=("$flavour: ctest exit $rc")
    f=1
  fi
  if $ci && ((s > 0)); then
    echo "CI=true: $s skipped test(s) in $flavour count as failed"
    notes+=("$flavour: $s skipped under CI")
    f=$((f + s))
    s=0
  fi
  echo "=== $flavour: passed $p, failed $f, skipped $s ==="
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + s))
}

run asan -L unit
run wasm -L 'unit|fuzz'  # fuzz: the JavaScript parsers' mutation runs (web_media_fuzz)
run release -L 'integration|unit|browser|sim'
run fuzz -L fuzz

if ((${#notes[@]})); then
  printf 'note: %s\n' "${notes[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
