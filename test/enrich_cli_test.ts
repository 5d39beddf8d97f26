import { assert, assertEquals } from "./_assert.ts";

const script = new URL("../cli/enrich.ts", import.meta.url).pathname;

interface Summary {
  processed: number;
  failed: number;
  checksum: string;
  resumedFrom: number;
  interrupted?: string;
  restarts: number;
  crashedOut: number;
  stopped?: string;
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

/**
 * 299 tasks of the job crash their worker once and recover on their retry; four of them before
 * the first checkpoint (every 8,192 tasks). A short backoff and a loose crash-loop bound keep
 * the run quick.
 */
const crashing = [...job, "--crash-every=2003", "--restart-backoff-ms=1", "--max-restarts=100000"];

Deno.test("enrich whose workers crash on some tasks restarts them and ends with the clean run's checksum and NDJSON", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const clean = await summaryOf([...job, `--out=${dir}/clean.ndjson`]);
    const crashed = await summaryOf([...crashing, `--out=${dir}/crashed.ndjson`]);
    assertEquals(crashed.restarts, Math.floor(600_000 / 2003));
    assertEquals(crashed.crashedOut, 0);
    assertEquals([crashed.processed, crashed.checksum], [clean.processed, clean.checksum]);
    assert(
      (await Deno.readTextFile(`${dir}/crashed.ndjson`)) ===
        (await Deno.readTextFile(`${dir}/clean.ndjson`)),
      "every crashed task's retry wrote the clean run's line, once",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("enrich killed with SIGKILL while workers crash resumes to the clean run's checksum and NDJSON", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const clean = await summaryOf([...job, `--out=${dir}/clean.ndjson`]);
    const checkpoint = `${dir}/job.checkpoint`;
    const args = [...crashing, `--checkpoint=${checkpoint}`, `--out=${dir}/resumed.ndjson`];
    const killed = await interrupt(args, checkpoint, "SIGKILL");
    assert(killed.code !== 0, "killed before the end");
    const saved = JSON.parse(await Deno.readTextFile(checkpoint));
    assert(
      saved.next > 2003 && saved.next < 600_000,
      `crashes before the checkpoint at ${saved.next}`,
    );
    const resumed = await summaryOf(args);
    assertEquals(resumed.resumedFrom, saved.next);
    assertEquals([resumed.processed, resumed.checksum], [clean.processed, clean.checksum]);
    assert(
      (await Deno.readTextFile(`${dir}/resumed.ndjson`)) ===
        (await Deno.readTextFile(`${dir}/clean.ndjson`)),
      "the resumed NDJSON file equals the clean one",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("enrich records a task that crashes on every attempt as failed, in the NDJSON and the checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const small = ["--tasks=5000", "--seed=5", "--fail-every=97", "--limit=16"];
    const clean = await summaryOf(small);
    const checkpoint = `${dir}/job.checkpoint`;
    const crashed = await summaryOf([
      ...small,
      "--crash-every=1000",
      "--crash-attempts=3",
      "--max-retries=2",
      `--checkpoint=${checkpoint}`,
      `--out=${dir}/out.ndjson`,
    ]);
    assertEquals([crashed.crashedOut, crashed.restarts], [5, 15], "5 tasks, 3 crashes each");
    // Task 969 (= 97 × 10 - 1) fails on its own; tasks 999, 1999, … crash out.
    assertEquals(crashed.failed, clean.failed + 5);
    assert(crashed.checksum !== clean.checksum, "a crashed-out task is a different outcome");
    const saved = JSON.parse(await Deno.readTextFile(checkpoint));
    assertEquals([saved.next, saved.failed], [5000, crashed.failed]);
    const lines = (await Deno.readTextFile(`${dir}/out.ndjson`)).trim().split("\n");
    assertEquals(lines.length, 5000);
    const line = JSON.parse(lines[999]);
    assertEquals([line.index, line.ok], [999, false]);
    assert(/task 999 as it crashed its worker 3 times/.test(line.error), line.error);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("enrich stops on a crash loop with exit code 1 naming the task, and resumes from its checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const small = ["--tasks=5000", "--seed=5", "--fail-every=97", "--limit=16"];
    const clean = await summaryOf(small);
    const checkpoint = `${dir}/job.checkpoint`;
    const looping = await runToEnd([
      ...small,
      "--crash-every=1",
      "--max-restarts=5",
      "--restart-window-ms=60000",
      `--checkpoint=${checkpoint}`,
    ]);
    assertEquals(looping.code, 1, looping.stderr);
    assert(
      /crashed 5 times within 60000 ms \(a crash loop\): last crash in task \d+/.test(
        looping.stderr,
      ),
      looping.stderr,
    );
    assert(!/^\s+at /m.test(looping.stderr), "no stack trace");
    const resumed = await summaryOf([...small, `--checkpoint=${checkpoint}`]);
    assertEquals([resumed.processed, resumed.checksum], [clean.processed, clean.checksum]);
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
