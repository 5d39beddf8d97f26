import { assert, assertEquals } from "../_assert.ts";
import {
  formatTraceparent,
  newRootContext,
  parseTraceparent,
} from "../../src/tracing/traceparent.ts";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_ID = "00f067aa0ba902b7";
const VALID = `00-${TRACE_ID}-${SPAN_ID}-01`;

Deno.test("parseTraceparent() reads the trace id, parent id and flags of a valid header", () => {
  assertEquals(parseTraceparent(VALID), {
    traceId: TRACE_ID,
    spanId: SPAN_ID,
    traceFlags: 1,
    isRemote: true,
  });
});

Deno.test("parseTraceparent() ignores every malformed header the recommendation names", () => {
  const malformed: Record<string, string | null | undefined> = {
    "absent": null,
    "undefined": undefined,
    "empty": "",
    "one character short": VALID.slice(0, -1),
    "one character long (version 00)": `${VALID}0`,
    "version ff": `ff-${TRACE_ID}-${SPAN_ID}-01`,
    "version not hex": `0x-${TRACE_ID}-${SPAN_ID}-01`,
    "all-zero trace id": `00-${"0".repeat(32)}-${SPAN_ID}-01`,
    "all-zero parent id": `00-${TRACE_ID}-${"0".repeat(16)}-01`,
    "upper-case trace id": `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`,
    "non-hex parent id": `00-${TRACE_ID}-${SPAN_ID.slice(0, 15)}g-01`,
    "non-hex flags": `00-${TRACE_ID}-${SPAN_ID}-0z`,
    "wrong separator": `00_${TRACE_ID}-${SPAN_ID}-01`,
    "trace id one short": `00-${TRACE_ID.slice(1)}-${SPAN_ID}-01-`,
    "later version with junk after the flags": `01-${TRACE_ID}-${SPAN_ID}-01x`,
    "spaces inside": `00- ${TRACE_ID.slice(1)}-${SPAN_ID}-01`,
  };
  for (const [name, header] of Object.entries(malformed)) {
    assertEquals(parseTraceparent(header), undefined, name);
  }
});

Deno.test("parseTraceparent() reads a later version by its first four fields", () => {
  const parent = parseTraceparent(`cc-${TRACE_ID}-${SPAN_ID}-01-what-the-future-holds`);
  assertEquals(parent?.traceId, TRACE_ID);
  assertEquals(parent?.spanId, SPAN_ID);
});

Deno.test("parseTraceparent() attaches tracestate only to a valid parent", () => {
  assertEquals(
    parseTraceparent(VALID, "vendor=a,other=b")?.traceState?.serialize(),
    "vendor=a,other=b",
  );
  assertEquals(parseTraceparent(`00-${TRACE_ID}-${SPAN_ID}`, "vendor=a"), undefined);
});

Deno.test("formatTraceparent() writes what parseTraceparent() reads", () => {
  assertEquals(formatTraceparent(parseTraceparent(VALID)!), VALID);
  assertEquals(
    formatTraceparent({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 0 }),
    `00-${TRACE_ID}-${SPAN_ID}-00`,
  );
});

Deno.test("newRootContext() makes valid, distinct, unsampled ids", () => {
  const a = newRootContext();
  const b = newRootContext();
  assert(parseTraceparent(formatTraceparent(a)) !== undefined);
  assert(a.traceId !== b.traceId && a.spanId !== b.spanId);
  assertEquals(a.traceFlags, 0);
});
