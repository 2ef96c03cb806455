#!/usr/bin/env bash
# Installs the browser test's npm packages (puppeteer-core, locked by
# tests/browser/package-lock.json) into build/npm/node_modules, outside the
# tracked files: `npm ci` on copies of package.json and package-lock.json.
# PUPPETEER_SKIP_DOWNLOAD=1: puppeteer-core never downloads a browser (the test
# uses Debian's chromium). Fast when the installed tree matches the lock file.
#   scripts/npm-deps.sh [DIR]     (default: build/npm, or $P2PCDN_NPM_DIR)
# The browser test reads DIR/node_modules (ctest passes it; CMake cache
# variable P2PCDN_BROWSER_NODE_MODULES).
set -euo pipefail
cd "$(dirname "$0")/.."
src=tests/browser
dir=${1:-${P2PCDN_NPM_DIR:-build/npm}}
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
   npm_config_update_notifier=false npm ci --no-audit --no-fund --loglevel=error)
want=$(node -p 'require(process.argv[1]).packages["node_modules/puppeteer-core"].version' "$PWD/$src/package-lock.json")
have=$(node -p 'require(process.argv[1]).version' "$PWD/$dir/node_modules/puppeteer-core/package.json")
if [[ $want != "$have" ]]; then
  echo "npm-deps: npm ci installed puppeteer-core $have, the lock file says $want" >&2
  exit 1
fi
date -u +%FT%TZ >"$stamp"
echo "npm-deps: puppeteer-core $have in $dir/node_modules" >&2
