/**
 * `deno task config:check [FILE…]`: validates aggregation config files (`fanfare.config.json`
 * by default) without starting anything, printing every problem with its JSON path. Exits 1
 * when any file has one. With `--schema`, (re)writes `fanfare.config.schema.json`, the JSON
 * Schema editors read for completion, instead.
 *
 * @example
 * ```sh
 * deno task config:check                 # fanfare.config.json
 * deno task config:check other.json      # endpoints[0].branches.customer.needs[0]: unknown branch "ordr"
 * deno task config:check --schema        # writes fanfare.config.schema.json
 * ```
 *
 * @module
 */
import { configIssues } from "../src/aggregate/mod.ts";
import { configJsonSchema } from "./_config_schema.ts";

const SCHEMA_FILE = "fanfare.config.schema.json";

if (Deno.args.includes("--schema")) {
  await Deno.writeTextFile(SCHEMA_FILE, JSON.stringify(configJsonSchema(), null, 2) + "\n");
  console.log(`wrote ${SCHEMA_FILE}`);
  Deno.exit(0);
}

const files = Deno.args.length > 0 ? Deno.args : ["fanfare.config.json"];
let failed = false;
for (const file of files) {
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(file));
  } catch (error) {
    console.error(`${file}: cannot read it as JSON: ${(error as Error).message}`);
    failed = true;
    continue;
  }
  const issues = configIssues(json);
  if (issues.length === 0) {
    const { endpoints, product } = json as {
      endpoints: { branches: object }[];
      product?: { branches: object };
    };
    const branches = endpoints.reduce((sum, e) => sum + Object.keys(e.branches).length, 0);
    const page = product === undefined
      ? ""
      : `, the product page's ${Object.keys(product.branches).length} branch(es)`;
    console.log(`${file}: valid, ${endpoints.length} endpoint(s), ${branches} branch(es)${page}`);
  } else {
    failed = true;
    for (const issue of issues) console.error(`${file}: ${issue}`);
  }
}
if (failed) Deno.exit(1);
