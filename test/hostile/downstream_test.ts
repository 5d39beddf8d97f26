/**
 * The gateway on Deno, Bun and workerd (`workerd serve`) in front of a hostile downstream
 * (`_hostile_downstream.ts`): every case degrades only the `reviews` branch, with a reason of the
 * gateway's own words, and the page still answers 200 with the required branches. No answer
 * carries a byte the downstream chose, and the redirect target is never called.
 *
 * No timing is asserted: a stalled branch must end as a timeout, which only its deadline can do.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { type Runtime, startGateway } from "../_servers.ts";
import { DOWNSTREAM_SECRET, startHostileDownstream } from "./_hostile_downstream.ts";

const RUNTIMES: Runtime[] = ["deno", "bun", "workerd"];

/** Each case and the reason `reviews` must be degraded with (a pattern for errors). */
const CASES: [string, string | RegExp][] = [
  ["redirect", "redirect"],
  ["deep", "invalid body"],
  ["huge", "body too large"],
  ["endless", "body too large"],
  // Deno and workerd inflate it and stop at the cap; Bun's gateway takes the bytes as sent.
  ["gzipbomb", /^(body too large|invalid body)$/],
  ["html", "invalid body"],
  ["null", "invalid body"],
  ["reset", /^error: /],
  ["garbage", /^error: /],
  ["halfheaders", "timeout"],
  ["stall", "timeout"],
  ["liar", "invalid body"],
];

for (const runtime of RUNTIMES) {
  Deno.test(`a hostile downstream degrades one branch on ${runtime}`, async (t) => {
    const downstream = await startHostileDownstream();
    const gateway = await startGateway(runtime, downstream.url).catch(async (error) => {
      await downstream.close();
      throw error;
    });
    try {
      for (const [kind, reason] of CASES) {
        await t.step(kind, async () => {
          const response = await fetch(`${gateway.url}product/${kind}?budget=2000`);
          const text = await response.text();
          assertEquals(response.status, 200, text.slice(0, 500));
          const body = JSON.parse(text);
          assertEquals(Object.keys(body.reasons), ["reviews"], text.slice(0, 500));
          if (typeof reason === "string") assertEquals(body.reasons.reviews, reason);
          else assert(reason.test(body.reasons.reviews), body.reasons.reviews);
          assertEquals(body.product.price.ok, true);
          assert(!text.includes(DOWNSTREAM_SECRET), `the answer quotes the downstream: ${text}`);
        });
      }
      assertEquals(downstream.internalHits(), 0);
    } finally {
      await gateway.stop();
      await downstream.close();
    }
  });
}
