/**
 * The dashboard end to end: Debian's Chromium, driven by playwright-core, against the gateway
 * served by Deno in front of the simulated downstream, each its own process.
 *
 * Leaves screenshots in `bench/results/` (wide and narrow). Fails, never skips, when Chromium is
 * missing: `.ci/run` installs it.
 *
 * @module
 */
import { chromium } from "playwright-core";
import { assert, assertEquals } from "./_assert.ts";
import { startGateway, startSimulatedDownstream } from "./_servers.ts";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--no-first-run",
];
/** Upper bound on any wait for the page, so a broken page fails instead of hanging. */
const PAGE_TIMEOUT_MS = 15_000;
/** Product requests sent to make the live numbers move. */
const TRAFFIC = 40;
/** Requests in flight at once while sending {@linkcode TRAFFIC}. */
const CLIENTS = 4;
const RESULTS = new URL("../bench/results/", import.meta.url);

function requireChromium(): void {
  try {
    Deno.statSync(CHROMIUM);
  } catch {
    throw new Error(
      `Cannot run the dashboard's browser test as Chromium must be at ${CHROMIUM}: it is missing. Install it with 'apt-get install -y chromium' (.ci/run does)`,
    );
  }
}

Deno.test("the dashboard works in a real browser against the gateway on Deno", async (t) => {
  requireChromium();
  const downstream = await startSimulatedDownstream();
  const userDataDir = await Deno.makeTempDir({ prefix: "fanfare-chromium-" });
  let gateway: Awaited<ReturnType<typeof startGateway>> | undefined;
  let context: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
  try {
    gateway = await startGateway("deno", downstream.url);
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1100, height: 900 },
    });
    const page = await context.newPage();
    page.setDefaultTimeout(PAGE_TIMEOUT_MS);
    const consoleErrors: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });
    page.on("pageerror", (error) => consoleErrors.push(String(error)));
    const base = gateway.url;

    await t.step("the page loads and reads its first stats with no limiter", async () => {
      await page.goto(base);
      await page.waitForSelector("#status.live");
      assertEquals(await page.textContent("#total"), "0");
      assertEquals(await page.textContent("#ceiling"), "no global ceiling (limiter absent)");
      assertEquals(await page.locator("#faults select").count(), 5);
    });

    await t.step("the live numbers move after traffic is sent", async () => {
      // A few at a time, as a handful of clients would; every fourth fails one branch.
      for (let i = 0; i < TRAFFIC; i += CLIENTS) {
        await Promise.all(Array.from({ length: CLIENTS }, async (_, j) => {
          const query = (i + j) % 4 === 0 ? "?fault.recommendations=fail" : "";
          const response = await fetch(`${base}product/sku-${i + j}${query}`);
          await response.body?.cancel();
        }));
      }
      // Page-side code goes as strings: the tests are type-checked without the DOM library.
      await page.waitForFunction(
        `Number(document.getElementById("total").textContent) >= ${TRAFFIC}`,
      );
      const rate = Number(await page.textContent("#rate"));
      assert(rate > 0, `requests/s on the page is ${rate} after ${TRAFFIC} requests`);
      assert((await page.textContent("#p50")) !== "–", "p50 shows a number");
      const outcomes = await page.textContent("#branches");
      assert(outcomes?.includes("recommendations"), "the branch table lists recommendations");
      assert(outcomes?.includes("error"), `the outcome mix shows the failures: ${outcomes}`);
    });

    await t.step("a try with a failing branch shows it degraded in the waterfall", async () => {
      await page.selectOption('select[name="fault.reviews"]', "fail");
      await page.selectOption('select[name="fault.shipping"]', "slow");
      await page.click("#try button[type=submit]");
      const reviews = page.locator('#waterfall .row[data-branch="reviews"]');
      await reviews.waitFor();
      assertEquals(await reviews.getAttribute("data-degraded"), "true");
      assertEquals(await reviews.getAttribute("data-outcome"), "error");
      const shipping = page.locator('#waterfall .row[data-branch="shipping"]');
      assertEquals(await shipping.getAttribute("data-outcome"), "timeout");
      assertEquals(await page.locator("#waterfall .row").count(), 5);
      assertEquals(await page.locator("#waterfall .deadline").count(), 5);
      const answer = JSON.parse((await page.textContent("#answer"))!);
      assertEquals(answer.degraded.sort(), ["reviews", "shipping"]);
      await Deno.mkdir(RESULTS, { recursive: true });
      await page.screenshot({ path: new URL("dashboard.png", RESULTS).pathname, fullPage: true });
    });

    await t.step(
      "a try of the dependent endpoint draws its levels and what each waited on",
      async () => {
        await page.selectOption("#route", "/orders/:orderId");
        await page.selectOption('select[name="policy"]', "collectAll");
        await page.fill('input[name="id"]', "o1");
        await page.fill('input[name="budget"]', "1000");
        await page.click("#try button[type=submit]");
        const offers = page.locator('#waterfall .row[data-branch="offers"]');
        await offers.waitFor();
        assertEquals(await offers.getAttribute("data-level"), "2");
        assertEquals(await offers.getAttribute("data-waited-on"), "customer");
        assertEquals(await page.locator("#waterfall .row").count(), 4);
        assert(
          (await page.textContent("#answer-status"))?.includes(
            "GET /orders/o1?policy=collectAll&budget=1000",
          ),
        );
        // The form's policy reached the endpoint, and not the product's per-branch faults.
        assertEquals(JSON.parse((await page.textContent("#answer"))!).policy, "collectAll");
        // The endpoints table shows its degraded share once the stats poll has seen the request.
        const degraded = page.locator('#endpoints tr[data-endpoint="orders"] td').nth(4);
        await page.waitForFunction(
          "document.querySelector('#endpoints tr[data-endpoint=\"orders\"] td:nth-child(5)')?.textContent.endsWith('%')",
        );
        assert((await degraded.textContent())?.endsWith(" %"));
      },
    );

    await t.step("the page fits a narrow screen without sideways scrolling", async () => {
      await page.setViewportSize({ width: 375, height: 800 });
      const overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth",
      );
      await page.screenshot({
        path: new URL("dashboard-narrow.png", RESULTS).pathname,
        fullPage: true,
      });
      assertEquals(overflow, 0);
    });

    await t.step("nothing was logged as a console error", () => {
      assertEquals(consoleErrors, []);
    });
  } finally {
    await context?.close();
    await gateway?.stop();
    await downstream.stop();
    await Deno.remove(userDataDir, { recursive: true });
  }
});
