// The node tests' assertions (tests/web/*_test.mjs): the first failure ends the run (exit 1).
import { P2PCDNError } from "../../web/src/core.js";

let count = 0;
export function check(cond, what) {
  if (!cond) {
    console.error("FAILED: " + what);
    process.exit(1);
  }
  ++count;
}
export const checks = () => count;
// fn() must throw a P2PCDNError of `code`.
export function throwsCode(fn, code, what) {
  try {
    fn();
  } catch (e) {
    check(e instanceof P2PCDNError && e.code === code, `${what}: ${e.code} ${e.message}`);
    return e;
  }
  check(false, what + ": did not throw");
}
// The promise must reject with a P2PCDNError of `code`.
export async function rejectsCode(p, code, what) {
  try {
    await p;
  } catch (e) {
    check(e instanceof P2PCDNError && e.code === code, `${what}: ${e.code} ${e.message}`);
    return;
  }
  check(false, what + ": did not fail");
}
