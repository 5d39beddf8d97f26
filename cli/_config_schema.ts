/**
 * The JSON Schema of the aggregation config, made from its zod schema (the checks across
 * fields, such as needs naming branches, are only in `configIssues`).
 *
 * @module
 */
import * as z from "zod/mini";
import { configSchema } from "../src/aggregate/mod.ts";

/** The schema as `fanfare.config.schema.json` holds it. */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configSchema, { io: "input" }),
    title: "fanfare aggregation config",
    description:
      "Endpoints that aggregate downstream calls; checked in full by `deno task config:check`.",
  };
}
