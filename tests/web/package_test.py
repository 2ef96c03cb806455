#!/usr/bin/env python3
"""The browser package as a user gets it: `npm pack` of the built package
(build/wasm/web) holds the ES modules, the .wasm and the types and declares
the seed's license; `npm install` of that tarball into a fresh project works
offline; tsc (strict) type-checks tests/web/types_check.ts, a page written
against the seed's API, through the installed package (its @ts-expect-error
lines make types that went `any` fail). Prints the package's size (raw and
brotli).

  package_test.py --package DIR --node-modules DIR [--node PATH] [--npm PATH]

Exits 77 (skip) when node, npm, typescript or the package is missing."""

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = 77
WANT = ["package/package.json", "package/types/index.d.ts", "package/dist/index.js", "package/dist/p2pcdn.js",
        "package/dist/p2pcdn_core.mjs", "package/dist/p2pcdn_core.wasm", "package/dist/storage.js",
        "package/dist/crypto.js", "package/dist/fetch.js", "package/dist/chunks.js", "package/dist/host.js", "package/dist/peer.js",
        "package/dist/core.js", "package/dist/module.js"]


def run(cmd, cwd, what, timeout=180):
    p = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise SystemExit(f"FAIL [web_package]: {what} exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p.stdout


def brotli_size(data, node):
    js = "const z=require('zlib');let b=[];process.stdin.on('data',d=>b.push(d)).on('end',()=>" \
         "console.log(z.brotliCompressSync(Buffer.concat(b),{params:{[z.constants.BROTLI_PARAM_QUALITY]:11}}).length))"
    p = subprocess.run([node, "-e", js], input=data, capture_output=True, timeout=120)
    return int(p.stdout.decode().strip())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--package", required=True)
    ap.add_argument("--node-modules", required=True)
    ap.add_argument("--node", default=shutil.which("node") or "node")
    ap.add_argument("--npm", default=shutil.which("npm") or "npm")
    args = ap.parse_args()
    tsc = Path(args.node_modules).resolve() / "typescript" / "bin" / "tsc"
    for what, path in (("node", args.node), ("npm", args.npm), ("typescript (scripts/npm-deps.sh)", tsc),
                       ("the package (./scripts/build.sh wasm)", Path(args.package) / "dist" / "p2pcdn_core.wasm")):
        if not Path(path).exists():
            print(f"[web_package] SKIPPED: {what} not found ({path})", flush=True)
            return SKIP
    tmp = Path(tempfile.mkdtemp(prefix="p2pcdn-web-package-"))
    try:
        out = run([args.npm, "pack", "--json", "--pack-destination", tmp], args.package, "npm pack")
        tarball = tmp / json.loads(out)[0]["filename"]
        with tarfile.open(tarball) as t:
            names = t.getnames()
            meta = json.load(t.extractfile("package/package.json"))
            wasm = t.extractfile("package/dist/p2pcdn_core.wasm").read()
            js = b"".join(t.extractfile(n).read() for n in names if n.endswith((".js", ".mjs")))
        missing = [n for n in WANT if n not in names]
        if missing:
            raise SystemExit(f"FAIL [web_package]: the tarball lacks {missing} (it has {names})")
        if meta.get("license") != "AGPL-3.0-or-later":
            raise SystemExit(f"FAIL [web_package]: the package declares license {meta.get('license')!r}")
        if meta.get("types") != "./types/index.d.ts":
            raise SystemExit(f"FAIL [web_package]: package.json names types {meta.get('types')!r}")
        project = tmp / "project"
        project.mkdir()
        (project / "package.json").write_text('{"name": "a-page", "private": true, "type": "module"}\n')
        run([args.npm, "install", "--offline", "--no-audit", "--no-fund", tarball], project, "npm install of the tarball")
        for f in ("types_check.ts", "tsconfig.json"):
            shutil.copy(HERE / f, project / f)
        run([args.node, tsc, "-p", project / "tsconfig.json"], project, "tsc --strict on types_check.ts")
        print(f"  npm pack: {len(names)} files, {tarball.stat().st_size} bytes; wasm {len(wasm)} bytes "
              f"({brotli_size(wasm, args.node)} brotli), JS {len(js)} bytes ({brotli_size(js, args.node)} brotli); "
              "installs offline; tsc --strict passes", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("[web_package] passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
