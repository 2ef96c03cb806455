#!/usr/bin/env bash
# Installs the browser test's npm packages (puppeteer-core and typescript,
# locked by tests/browser/package-lock.json) into build/npm/node_modules,
# outside the tracked files: `npm ci` on copies of package.json and
# package-lock.json, without install scripts (none is needed, and they could
# try to download). PUPPETEER_SKIP_DOWNLOAD=1: puppeteer-core never downloads a
# browser (the test uses Debian's chromium). Fast when the installed tree
# matches the lock file.
#   scripts/npm-deps.sh [DIR [SRC]]   (default: build/npm, or $P2PCDN_NPM_DIR;
#                                      SRC: the folder of package.json, tests/browser)
# The browser test reads DIR/node_modules (ctest passes it; CMake cache
# variable P2PCDN_BROWSER_NODE_MODULES). bench/web_download.py installs
# WebTorrent for its comparison with: scripts/npm-deps.sh build/npm-webtorrent bench/webtorrent
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-${P2PCDN_NPM_DIR:-build/npm}}
src=${2:-tests/browser}
stamp=$dir/node_modules/.p2pcdn-npm-deps

if ! command -v npm >/dev/null 2>&1; then
  echo "npm-deps: npm not found (scripts/install-deps.sh installs it)" >&2
  exit 1
fi

mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9  # parallel callers do not install over each other

if [[ -f $stamp ]] && cmp -s "$src/package.json" "$dir/package.json" &&
   cmp -s "$src/package-lock.json" "$dir/package-lock.json"; then
  exit 0
fi

cp "$src/package.json" "$src/package-lock.json" "$dir/"
echo "npm-deps: npm ci in $dir" >&2
(cd "$dir" && PUPPETEER_SKIP_DOWNLOAD=1 PUPPETEER_SKIP_CHROME_DOWNLOAD=1 \
   npm_config_update_notifier=false npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
# Every direct dependency must be installed at the version the lock file says.
node -e '
  const [lock, dir] = process.argv.slice(1);
  const l = require(lock);
  for (const name of Object.keys(l.packages[""].dependencies || {})) {
    const want = l.packages["node_modules/" + name].version;
    const have = require(dir + "/node_modules/" + name + "/package.json").version;
    if (want !== have) { console.error(`npm-deps: npm ci installed ${name} ${have}, the lock file says ${want}`); process.exit(1); }
    console.error(`npm-deps: ${name} ${have} in ${dir}/node_modules`);
  }' "$(realpath "$src/package-lock.json")" "$(realpath "$dir")"
date -u +%FT%TZ >"$stamp"
