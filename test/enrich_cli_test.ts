import { assert, assertEquals } from "./_assert.ts";

const script = new URL("../cli/enrich.ts", import.meta.url).pathname;

interface Summary {
  processed: number;
  failed: number;
  checksum: string;
  resumedFrom: number;
  interrupted?: string;
}

function enrich(args: string[]) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    stdout: "piped",
    stderr: "piped",
  });
}

async function runToEnd(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await enrich(args).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

async function summaryOf(args: string[]): Promise<Summary> {
  const { code, stdout, stderr } = await runToEnd([...args, "--json"]);
  assertEquals(code, 0, stderr);
  return JSON.parse(stdout);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once `path` exists, or rejects if `exited` settles first. */
async function fileAppears(path: string, exited: Promise<unknown>): Promise<void> {
  const watcher = Deno.watchFs(path.slice(0, path.lastIndexOf("/")));
  try {
    const appeared = (async () => {
      if (exists(path)) return;
      for await (const _ of watcher) if (exists(path)) return;
    })();
    const gone = exited.then(() => {
      if (!exists(path)) throw new Error(`enrich exited before writing ${path}`);
    });
    await Promise.race([appeared, gone]);
  } finally {
    watcher.close();
  }
}

/** Runs enrich until it has written a checkpoint, then sends `signal`; returns its exit. */
async function interrupt(args: string[], checkpoint: string, signal: Deno.Signal) {
  const child = enrich(args).spawn();
  const output = child.output();
  try {
    await fileAppears(checkpoint, child.status);
    child.kill(signal);
  } catch (error) {
    await output;
    throw error;
  }
  const { code, stdout } = await output;
  return { code, stdout: new TextDecoder().decode(stdout) };
}

const job = ["--tasks=600000", "--seed=5", "--fail-every=97", "--limit=16", "--progress-ms=1"];

Deno.test("enrich killed with SIGKILL after a checkpoint resumes and ends with the uninterrupted run's checksum and NDJSON", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const whole = await summaryOf([...job, `--out=${dir}/whole.ndjson`]);
    const checkpoint = `${dir}/job.checkpoint`;
    const args = [...job, `--checkpoint=${checkpoint}`, `--out=${dir}/resumed.ndjson`];
    const killed = await interrupt(args, checkpoint, "SIGKILL");
    assert(killed.code !== 0, "killed before the end");
    const saved = JSON.parse(await Deno.readTextFile(checkpoint));
    assert(saved.next > 0 && saved.next < 600_000, `checkpoint at ${saved.next}`);
    const resumed = await summaryOf(args);
    assertEquals(resumed.resumedFrom, saved.next);
    assertEquals([resumed.processed, resumed.checksum], [whole.processed, whole.checksum]);
    assert(
      (await Deno.readTextFile(`${dir}/resumed.ndjson`)) ===
        (await Deno.readTextFile(`${dir}/whole.ndjson`)),
      "the resumed NDJSON file equals the uninterrupted one",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("enrich drains on Ctrl-C, exits 130 with a checkpoint, and a restart completes with the same checksum", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const whole = await summaryOf(job);
    const checkpoint = `${dir}/job.checkpoint`;
    const args = [...job, `--checkpoint=${checkpoint}`, "--json"];
    const drained = await interrupt(args, checkpoint, "SIGINT");
    assertEquals(drained.code, 130);
    const first: Summary = JSON.parse(drained.stdout);
    assertEquals(first.interrupted, "drain");
    const saved = JSON.parse(await Deno.readTextFile(checkpoint));
    assertEquals(saved.next, first.processed);
    const resumed = await summaryOf(args.slice(0, -1));
    assertEquals([resumed.processed, resumed.checksum], [whole.processed, whole.checksum]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("enrich rejects a bad argument with the usage text and exit code 2, without a stack trace", async () => {
  for (const bad of [["--tasks=lots"], ["--limit=0"], ["--error-rate=2"], ["--frobnicate"]]) {
    const { code, stderr } = await runToEnd(bad);
    assertEquals(code, 2, bad.join(" "));
    assert(stderr.includes("Usage: enrich"), stderr);
    assert(!/^\s+at /m.test(stderr), stderr);
  }
});

Deno.test("enrich refuses --checkpoint with --unordered, naming the constraint", async () => {
  const { code, stderr } = await runToEnd(["--unordered", "--checkpoint=x"]);
  assertEquals(code, 2);
  assert(stderr.includes("--checkpoint needs ordered"), stderr);
});

Deno.test("enrich --unbounded fails the same tasks and ends with the bounded run's checksum", async () => {
  const job = ["--tasks=5000", "--seed=9", "--error-rate=0.1", "--fail-every=97"];
  const bounded = await summaryOf(job);
  const unbounded = await summaryOf([...job, "--unbounded"]);
  assert(bounded.failed > 0, "the job has failures to count");
  assertEquals([unbounded.failed, unbounded.checksum], [bounded.failed, bounded.checksum]);
});
