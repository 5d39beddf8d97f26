/**
 * One open-loop step of the overload experiments in a process of its own, on Bun or Deno (see
 * `bench/_generate.ts`, which starts it): `GET <url>product/sku-<i % 1000>
 * ?policy=bestEffort&budget=<budget>` at `rate` per second, `count` requests, each aborted after
 * `guardMs`. Prints `started` once its loop is about to send, then one JSON line:
 * `{ samples, cpuSeconds }` (its samples, each body a `ProductSummary`, and the CPU time it used).
 *
 * A fresh generator per step, so that no step inherits another's connections, heap or native
 * memory: one generator for a whole sweep grew from 250 MB to 1 GB RSS as the gateways without
 * protection collapsed under it, each leaving thousands of aborted requests behind.
 *
 * @example
 * ```sh
 * bun bench/_generator.ts http://127.0.0.1:8787/ 500 2500 5000 1000
 * ```
 *
 * @module
 */
import process from "node:process";
import { productReply } from "./_product_reply.ts";
import { openLoop } from "./_open_loop.ts";

const args = process.argv.slice(2);
const [url, rateText, countText, guardText, budgetText] = args;
const numbers = [rateText, countText, guardText, budgetText].map(Number);
if (url === undefined || numbers.some((n) => !(n > 0))) {
  throw new RangeError(
    `Cannot generate load as the arguments must be '<url> <rate> <count> <guardMs> <budgetMs>' with positive numbers: current value is ${
      JSON.stringify(args)
    }`,
  );
}
const [ratePerSecond, count, guardMs, budgetMs] = numbers;
const base = url.replace(/\/?$/, "/");

console.log("started");
const cpu = process.cpuUsage();
const samples = await openLoop({
  count,
  ratePerSecond,
  guardMs,
  send: async (index, signal) =>
    productReply(
      await fetch(`${base}product/sku-${index % 1000}?policy=bestEffort&budget=${budgetMs}`, {
        signal,
      }),
    ),
});
const { user, system } = process.cpuUsage(cpu);
console.log(JSON.stringify({ samples, cpuSeconds: (user + system) / 1e6 }));
