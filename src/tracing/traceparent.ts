/**
 * W3C Trace Context headers: `traceparent` read and written exactly as the recommendation says,
 * `tracestate` parsed by `@opentelemetry/api`, and fresh ids for a trace that starts here.
 *
 * @module
 */
import { createTraceState, type SpanContext, TraceFlags } from "@opentelemetry/api";

/** The request header naming the caller's trace and span. */
export const TRACEPARENT_HEADER = "traceparent";
/** The request header carrying vendors' own trace data, forwarded with `traceparent`. */
export const TRACESTATE_HEADER = "tracestate";
/**
 * The response header naming the trace and the span that served the request (W3C Trace Context
 * Level 2's `traceresponse`, the same format as `traceparent`), so a caller can look it up.
 */
export const TRACERESPONSE_HEADER = "traceresponse";

/** `traceparent` of version 00 is exactly this long: `vv-<32 hex>-<16 hex>-ff`. */
const TRACEPARENT_LENGTH = 55;
const ZERO_TRACE_ID = "00000000000000000000000000000000";
const ZERO_SPAN_ID = "0000000000000000";

/**
 * The span context a `traceparent` header names, or `undefined` when the header is absent or
 * malformed. Per the recommendation a malformed header is ignored (the caller then starts a new
 * trace), never answered with an error: a value that is not 55 characters of version `00`,
 * version `ff`, upper-case or non-hex digits, a missing `-`, or an all-zero trace or parent id.
 * A later version is read by its first four fields when what follows them starts with `-`.
 * `tracestate` is attached only to a valid parent (through the API's own parser, which drops
 * bad members and keeps at most 32 of 512 characters).
 *
 * @example
 * ```ts
 * import { parseTraceparent } from "./traceparent.ts";
 *
 * const parent = parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
 * parent?.traceId; // "4bf92f3577b34da6a3ce929d0e0e4736"
 * parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"); // undefined
 * ```
 */
export function parseTraceparent(
  traceparent: string | null | undefined,
  tracestate?: string | null,
): SpanContext | undefined {
  if (typeof traceparent !== "string" || traceparent.length < TRACEPARENT_LENGTH) return undefined;
  const version = traceparent.slice(0, 2);
  if (!isLowerHex(version) || version === "ff") return undefined;
  if (version === "00" && traceparent.length !== TRACEPARENT_LENGTH) return undefined;
  if (traceparent.length > TRACEPARENT_LENGTH && traceparent[TRACEPARENT_LENGTH] !== "-") {
    return undefined;
  }
  if (traceparent[2] !== "-" || traceparent[35] !== "-" || traceparent[52] !== "-") {
    return undefined;
  }
  const traceId = traceparent.slice(3, 35);
  const spanId = traceparent.slice(36, 52);
  const flags = traceparent.slice(53, 55);
  if (!isLowerHex(traceId) || traceId === ZERO_TRACE_ID) return undefined;
  if (!isLowerHex(spanId) || spanId === ZERO_SPAN_ID) return undefined;
  if (!isLowerHex(flags)) return undefined;
  const context: SpanContext = {
    traceId,
    spanId,
    traceFlags: parseInt(flags, 16),
    isRemote: true,
  };
  if (typeof tracestate === "string" && tracestate.length > 0) {
    context.traceState = createTraceState(tracestate);
  }
  return context;
}

/**
 * The `traceparent` value (version 00) naming `context` as the parent of the call it is sent with.
 *
 * @example
 * ```ts
 * import { formatTraceparent } from "./traceparent.ts";
 *
 * formatTraceparent({
 *   traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
 *   spanId: "00f067aa0ba902b7",
 *   traceFlags: 1,
 * }); // "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
 * ```
 */
export function formatTraceparent(context: SpanContext): string {
  const flags = context.traceFlags & 0xff;
  return `00-${context.traceId}-${context.spanId}-${flags < 16 ? "0" : ""}${flags.toString(16)}`;
}

/**
 * A span context for a trace that starts here: random trace and span ids, not sampled (nothing
 * here records it; the ids only let the downstream calls be told apart and joined up).
 *
 * @example
 * ```ts
 * import { formatTraceparent, newRootContext } from "./traceparent.ts";
 *
 * formatTraceparent(newRootContext()); // "00-<32 random hex>-<16 random hex>-00"
 * ```
 */
export function newRootContext(): SpanContext {
  let traceId = randomHex(16);
  let spanId = randomHex(8);
  // All zeros is invalid; a chance of 2^-128 (2^-64), but the fix costs nothing.
  if (traceId === ZERO_TRACE_ID) traceId = "00000000000000000000000000000001";
  if (spanId === ZERO_SPAN_ID) spanId = "0000000000000001";
  return { traceId, spanId, traceFlags: TraceFlags.NONE };
}

/** Each byte's two hex digits. */
const BYTE_HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));
/**
 * Random bytes drawn from `crypto.getRandomValues` 4 KiB at a time: one call per 170 requests
 * instead of one per request (which cost a request about 2 µs on Deno).
 */
const pool = new Uint8Array(4096);
let poolAt = pool.length;

function randomHex(bytes: number): string {
  if (poolAt + bytes > pool.length) {
    crypto.getRandomValues(pool);
    poolAt = 0;
  }
  let text = "";
  for (let i = poolAt; i < poolAt + bytes; i++) text += BYTE_HEX[pool[i]];
  // Used bytes are never handed out again.
  poolAt += bytes;
  return text;
}

function isLowerHex(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // 0-9 or a-f
    if (!(c >= 48 && c <= 57) && !(c >= 97 && c <= 102)) return false;
  }
  return true;
}
