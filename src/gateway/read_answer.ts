/**
 * `readAnswer`: what the gateway accepts from a downstream. A downstream is not trusted: its
 * answer must be a 200–203 status (a 3xx is never followed), carry a JSON content type, fit in
 * the branch's byte cap, nest no deeper than its depth cap and be a JSON object. Anything else
 * is an {@linkcode AnswerError} whose `reason` is one of the gateway's own words, never the
 * downstream's bytes.
 *
 * Cheap on the hot path: a body with a `content-length` within the cap and no content coding is
 * read whole (HTTP framing stops the runtime at that length); only a body without one, or a
 * compressed one, is read chunk by chunk and cancelled the moment it passes the cap.
 *
 * @module
 */
import { abortable } from "../executor/mod.ts";
import type { Fetcher } from "./fetcher.ts";

/** Byte cap of a branch's body when the branch sets none: 64 KiB. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
/** Deepest nesting of arrays and objects a branch's JSON may have when it sets none. */
export const DEFAULT_MAX_DEPTH = 32;

/**
 * Why an answer was refused: `"redirect"` (a 3xx, not followed), `"body too large"` (past the
 * byte cap) or `"invalid body"` (not JSON, too deep, not an object, or a non-JSON content type).
 *
 * @example
 * ```ts
 * import type { AnswerRefusal } from "./read_answer.ts";
 * const reason: AnswerRefusal = "body too large";
 * ```
 */
export type AnswerRefusal = "redirect" | "body too large" | "invalid body";

/**
 * A downstream's answer the gateway refuses; `reason` is safe to show a client.
 *
 * @example
 * ```ts
 * import { AnswerError } from "./read_answer.ts";
 * new AnswerError("reviews", "redirect").message; // "Downstream 'reviews' answered a redirect"
 * ```
 */
export class AnswerError extends Error {
  /** Branch name. */
  readonly branch: string;
  /** Why, in the gateway's words. */
  readonly reason: AnswerRefusal;

  /** Branch `branch` gave an answer refused for `reason`. */
  constructor(branch: string, reason: AnswerRefusal) {
    super(`Downstream '${branch}' answered ${reason === "redirect" ? "a redirect" : reason}`);
    this.name = "AnswerError";
    this.branch = branch;
    this.reason = reason;
  }
}

/**
 * A downstream answered with a status that is not an answer (not 200–203, not a redirect).
 * A 504 counts as a timeout (the downstream ran out of the budget it was given), any other
 * status as an error.
 *
 * @example
 * ```ts
 * import { DownstreamError } from "./read_answer.ts";
 * new DownstreamError("reviews", 500).message; // "Downstream 'reviews' answered 500"
 * ```
 */
export class DownstreamError extends Error {
  /** Branch name. */
  readonly branch: string;
  /** HTTP status the downstream answered. */
  readonly status: number;
  /** The downstream's `Retry-After`, in ms, when it sent one in seconds. */
  readonly retryAfterMs?: number;

  /** Branch `branch` answered `status` (and maybe asked to wait `retryAfterMs`). */
  constructor(branch: string, status: number, retryAfterMs?: number) {
    super(`Downstream '${branch}' answered ${status}`);
    this.name = "DownstreamError";
    this.branch = branch;
    this.status = status;
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }
}

/**
 * Limits of one branch's answer.
 *
 * @example
 * ```ts
 * import type { AnswerLimits } from "./read_answer.ts";
 * const limits: AnswerLimits = { maxBodyBytes: 256 * 1024, maxDepth: 16 };
 * ```
 */
export interface AnswerLimits {
  /** Most bytes of body (after decoding any content coding); {@linkcode DEFAULT_MAX_BODY_BYTES}. */
  maxBodyBytes?: number;
  /** Deepest nesting of arrays and objects; {@linkcode DEFAULT_MAX_DEPTH}. */
  maxDepth?: number;
  /** `"object"` (default): only a JSON object is an answer; `"json"`: any JSON value but `null`. */
  accept?: "object" | "json";
}

/**
 * A branch as {@linkcode readAnswer} sees it: its name and limits (a `BranchSpec` is one).
 *
 * @example
 * ```ts
 * import type { AnswerBranch } from "./read_answer.ts";
 * const branch: AnswerBranch = { name: "reviews", maxBodyBytes: 16 * 1024 };
 * ```
 */
export interface AnswerBranch extends AnswerLimits {
  /** Branch name, for errors. */
  readonly name: string;
  /** Where the answer came from: one whose bodies are in memory is read whole (see `Fetcher`). */
  readonly fetcher?: Pick<Fetcher, "inMemory">;
}

/**
 * Reads and checks a downstream's answer for `branch`; resolves with its JSON value.
 * Rejects with {@linkcode AnswerError} or {@linkcode DownstreamError} for a refused answer
 * (its body cancelled), and with `signal.reason` when `signal` aborts first.
 *
 * @example
 * ```ts
 * import { readAnswer } from "./read_answer.ts";
 *
 * const response = Response.json({ amountCents: 999 });
 * const value = await readAnswer(response, { name: "price" }, new AbortController().signal);
 * ```
 */
export async function readAnswer(
  response: Response,
  {
    name: branch,
    maxBodyBytes = DEFAULT_MAX_BODY_BYTES,
    maxDepth = DEFAULT_MAX_DEPTH,
    accept = "object",
    fetcher,
  }: AnswerBranch,
  signal: AbortSignal,
): Promise<unknown> {
  const { status } = response;
  if (status < 200 || status > 203) {
    await cancelBody(response);
    if (response.type === "opaqueredirect" || (status >= 300 && status < 400)) {
      throw new AnswerError(branch, "redirect");
    }
    throw new DownstreamError(branch, status, retryAfterMs(response));
  }
  if (!isJsonType(response.headers.get("content-type"))) {
    await cancelBody(response);
    throw new AnswerError(branch, "invalid body");
  }
  const text = fetcher?.inMemory === true
    ? await readInMemory(branch, response, maxBodyBytes, signal)
    : await readText(branch, response, maxBodyBytes, signal);
  if (nestingExceeds(text, maxDepth)) throw new AnswerError(branch, "invalid body");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // The parser's message quotes the body: it must not reach a client.
    throw new AnswerError(branch, "invalid body");
  }
  const fits = accept === "object"
    ? typeof value === "object" && value !== null && !Array.isArray(value)
    : value !== null;
  if (!fits) throw new AnswerError(branch, "invalid body");
  return value;
}

/** Cancels a body nobody will read; never rejects. */
export function cancelBody(response: Response): Promise<void> {
  return response.body?.cancel().catch(() => {}) ?? Promise.resolve();
}

/** `Retry-After` in delay-seconds, as ms; an HTTP date or anything else is ignored. */
function retryAfterMs(response: Response): number | undefined {
  const value = response.headers.get("retry-after");
  return value !== null && /^\d+$/.test(value.trim()) ? Number(value) * 1000 : undefined;
}

/** `application/json` or `application/<anything>+json`, any parameters. */
function isJsonType(contentType: string | null): boolean {
  if (contentType === null) return false;
  const semicolon = contentType.indexOf(";");
  const type = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim()
    .toLowerCase();
  return type === "application/json" ||
    (type.startsWith("application/") && type.endsWith("+json"));
}

async function readText(
  branch: string,
  response: Response,
  maxBytes: number,
  signal: AbortSignal,
): Promise<string> {
  const declared = response.headers.get("content-length");
  const length = declared === null ? NaN : Number(declared);
  if (length > maxBytes) {
    await cancelBody(response);
    throw new AnswerError(branch, "body too large");
  }
  // A compressed body's content-length says nothing of its decoded size (a zip bomb).
  if (Number.isSafeInteger(length) && !response.headers.has("content-encoding")) {
    return await abortable(response.text(), signal, () => {});
  }
  if (response.body === null) return "";
  return await readCapped(branch, response.body, maxBytes, signal);
}

const UTF8 = new TextEncoder();

/**
 * Reads a body that is already in memory whole, then holds it to `maxBytes` (of UTF-8): reading
 * it as a stream would cost more than the rest of the branch, and bound nothing the app that
 * built it had not allocated already.
 */
async function readInMemory(
  branch: string,
  response: Response,
  maxBytes: number,
  signal: AbortSignal,
): Promise<string> {
  // Nothing to wait for but memory: the signal is only checked once the text is there.
  const text = await response.text();
  signal.throwIfAborted();
  // A UTF-16 code unit takes one to three bytes of UTF-8: count them only when it matters.
  if (
    text.length > maxBytes ||
    (text.length * 3 > maxBytes && UTF8.encode(text).byteLength > maxBytes)
  ) {
    throw new AnswerError(branch, "body too large");
  }
  return text;
}

/**
 * Decodes every capped body: a decoder is stateless between calls that pass no `stream` option,
 * and Deno converts the options of each `new TextDecoder()` and each streaming `decode()` through
 * WebIDL, which `bench:overhead` found the largest cost of reading a small answer.
 */
const utf8 = new TextDecoder();

/** Reads `body` chunk by chunk, cancelling it once it passes `maxBytes` or `signal` aborts. */
async function readCapped(
  branch: string,
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
  signal: AbortSignal,
): Promise<string> {
  signal.throwIfAborted();
  const reader = body.getReader();
  const onAbort = () => reader.cancel(signal.reason).catch(() => {});
  signal.addEventListener("abort", onAbort, { once: true });
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      signal.throwIfAborted();
      if (done) return utf8.decode(chunks.length === 1 ? chunks[0] : concat(chunks, size));
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => {});
        throw new AnswerError(branch, "body too large");
      }
      chunks.push(value);
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    reader.releaseLock();
  }
}

/** `chunks` (of `size` bytes in all) as one array. */
function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const whole = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    whole.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return whole;
}

const OPEN_BRACKET = 0x5b;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACKET = 0x5d;
const CLOSE_BRACE = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether `text` nests arrays and objects deeper than `maxDepth`, counted before parsing so that
 * neither the parser nor a later `JSON.stringify` of the joined answer ever sees such a value.
 * Brackets inside strings do not count. Malformed text is left for the parser to refuse.
 */
function nestingExceeds(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === BACKSLASH) i++;
      else if (code === QUOTE) inString = false;
    } else if (code === QUOTE) {
      inString = true;
    } else if (code === OPEN_BRACKET || code === OPEN_BRACE) {
      if (++depth > maxDepth) return true;
    } else if (code === CLOSE_BRACKET || code === CLOSE_BRACE) {
      depth--;
    }
  }
  return false;
}
