import {
  type AnswerError,
  type DownstreamError,
  readAnswer,
} from "../../src/gateway/read_answer.ts";
import { assertEquals } from "../_assert.ts";
import { rejectionOf } from "../_deferred.ts";

const signal = new AbortController().signal;
const jsonResponse = (text: string, headers: Record<string, string> = {}) =>
  new Response(text, { headers: { "content-type": "application/json", ...headers } });

Deno.test("readAnswer() does not count brackets inside strings towards the depth", async () => {
  const value = await readAnswer(
    jsonResponse(JSON.stringify({ text: '[[[[{{{{\\"]]]' })),
    { name: "b", maxDepth: 1 },
    signal,
  );
  assertEquals(value, { text: '[[[[{{{{\\"]]]' });
});

Deno.test("readAnswer() refuses one level past maxDepth and accepts exactly maxDepth", async () => {
  const nested = (depth: number) => '{"a":'.repeat(depth - 1) + "{}" + "}".repeat(depth - 1);
  assertEquals(await readAnswer(jsonResponse(nested(3)), { name: "b", maxDepth: 3 }, signal), {
    a: { a: {} },
  });
  const error = await rejectionOf(
    readAnswer(jsonResponse(nested(4)), { name: "b", maxDepth: 3 }, signal),
  );
  assertEquals((error as AnswerError).reason, "invalid body");
});

Deno.test("readAnswer() caps a compressed body by its decoded size, not its content-length", async () => {
  const zeros = new Blob([`{"pad":"${"0".repeat(200_000)}"}`]).stream()
    .pipeThrough(new CompressionStream("gzip")).pipeThrough(new DecompressionStream("gzip"));
  const response = new Response(zeros, {
    headers: {
      "content-type": "application/json",
      "content-encoding": "gzip",
      "content-length": "400",
    },
  });
  const error = await rejectionOf(readAnswer(response, { name: "b" }, signal));
  assertEquals((error as AnswerError).reason, "body too large");
});

Deno.test("readAnswer() calls a 3xx a redirect and any other status outside 200–203 a DownstreamError", async () => {
  const redirect = await rejectionOf(
    readAnswer(
      new Response(null, { status: 307, headers: { location: "/x" } }),
      { name: "b" },
      signal,
    ),
  );
  assertEquals((redirect as AnswerError).reason, "redirect");
  const partial = await rejectionOf(
    readAnswer(new Response(null, { status: 204 }), { name: "b" }, signal),
  );
  assertEquals((partial as DownstreamError).status, 204);
});

Deno.test("readAnswer() accepts any JSON value but null with accept: 'json'", async () => {
  assertEquals(await readAnswer(jsonResponse("[1]"), { name: "b", accept: "json" }, signal), [1]);
  const error = await rejectionOf(
    readAnswer(jsonResponse("null"), { name: "b", accept: "json" }, signal),
  );
  assertEquals((error as AnswerError).reason, "invalid body");
});

Deno.test("readAnswer() stops reading an endless body when its signal aborts", async () => {
  const controller = new AbortController();
  let cancelled = false;
  const endless = new ReadableStream<Uint8Array>({
    pull(c) {
      c.enqueue(new Uint8Array([0x20]));
      controller.abort(new Error("deadline"));
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  const error = await rejectionOf(
    readAnswer(new Response(endless, { headers: { "content-type": "application/json" } }), {
      name: "b",
    }, controller.signal),
  );
  assertEquals((error as Error).message, "deadline");
  assertEquals(cancelled, true);
});

Deno.test("readAnswer() holds an in-memory body to maxBodyBytes of UTF-8, not of characters", async () => {
  const inMemory = { inMemory: true };
  // {"a":"éééééééééé"} is 18 characters but 28 bytes: past a 25-byte cap, within a 28-byte one.
  const accented = JSON.stringify({ a: "é".repeat(10) });
  const error = await rejectionOf(
    readAnswer(jsonResponse(accented), { name: "b", maxBodyBytes: 25, fetcher: inMemory }, signal),
  );
  assertEquals((error as AnswerError).reason, "body too large");
  assertEquals(
    await readAnswer(
      jsonResponse(accented),
      { name: "b", maxBodyBytes: 28, fetcher: inMemory },
      signal,
    ),
    { a: "é".repeat(10) },
  );
  const long = await rejectionOf(
    readAnswer(jsonResponse(`{"a":"${"x".repeat(100)}"}`), {
      name: "b",
      maxBodyBytes: 64,
      fetcher: inMemory,
    }, signal),
  );
  assertEquals((long as AnswerError).reason, "body too large");
});

Deno.test("readAnswer() answers an aborted signal at once for an in-memory body", async () => {
  const controller = new AbortController();
  controller.abort(new Error("client went away"));
  const error = await rejectionOf(
    readAnswer(jsonResponse("{}"), { name: "b", fetcher: { inMemory: true } }, controller.signal),
  );
  assertEquals((error as Error).message, "client went away");
});
