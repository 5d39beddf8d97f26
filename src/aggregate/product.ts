/**
 * The product page's branches from the config: the registry the product route
 * (`GET /product/:id`) fans out to, each branch's path filled with the request's `id`.
 *
 * @module
 */
import {
  type BranchHedging,
  type BranchRegistry,
  defineRegistry,
  type Fetcher,
} from "../gateway/mod.ts";
import { type AggregateConfig, DEFAULT_DOWNSTREAM } from "./config.ts";
import { configFetchers } from "./downstreams.ts";
import { branchGuards } from "./endpoint.ts";
import { fillTemplate, parseTemplate } from "./template.ts";

/** Options of {@linkcode compileProduct}. */
export interface CompileProductOptions {
  /**
   * Hedging by branch name, in place of what the config says for that branch (an adapter's
   * `HEDGE=optional-reads`, say).
   */
  hedge?: Readonly<Record<string, BranchHedging | undefined>>;
}

/**
 * The registry of the product page `config` declares (validated as `parseConfig` does), its
 * downstreams' fetchers `provided` by name or made from their `url`; `undefined` when the config
 * declares no product page. Throws a `RangeError` naming a downstream without a fetcher.
 *
 * @example
 * ```ts
 * import { compileProduct } from "./product.ts";
 * const registry = compileProduct({
 *   product: { branches: { price: { path: "/price/{params.id}", required: true, timeoutMs: 300 } } },
 *   endpoints: [],
 * }, { default: { fetch: () => Response.json({ amountCents: 999 }) } });
 * ```
 */
export function compileProduct(
  config: AggregateConfig,
  provided: Readonly<Record<string, Fetcher>> = {},
  { hedge = {} }: CompileProductOptions = {},
): BranchRegistry | undefined {
  if (config.product === undefined) return undefined;
  const fetchers = configFetchers(config, provided);
  return defineRegistry(
    Object.entries(config.product.branches).map(([name, branch]) => {
      const downstream = branch.downstream ?? DEFAULT_DOWNSTREAM;
      const fetcher = fetchers[downstream];
      if (fetcher === undefined) {
        throw new RangeError(
          `Cannot compile the product page as branch "${name}" calls downstream "${downstream}", which has no fetcher: current downstreams are ${
            JSON.stringify(Object.keys(fetchers))
          }`,
        );
      }
      const template = parseTemplate(branch.path);
      const guards = branchGuards(branch);
      return {
        name,
        fetcher,
        path: function productPath(id: string): string {
          return fillTemplate(template, { params: { id }, query: {}, headers: {}, inputs: {} });
        },
        required: branch.required ?? false,
        idempotent: branch.idempotent ?? true,
        timeoutMs: branch.timeoutMs,
        ...guards,
        hedge: Object.hasOwn(hedge, name) ? hedge[name] : guards.hedge,
      };
    }),
  );
}
