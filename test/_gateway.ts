/**
 * The gateway in front of an in-process simulated downstream with no random tail, where every
 * branch answers at once unless a test says otherwise: the setup of the gateway's tests.
 *
 * @example
 * ```ts
 * import { gatewayOverDownstream } from "./_gateway.ts";
 * const { app, stats } = gatewayOverDownstream({ failBranches: ["reviews"] });
 * const response = await app.request("/product/sku-42");
 * ```
 *
 * @module
 */
import { createApp } from "../routes/app.ts";
import { createDownstream } from "../sim/downstream.ts";
import {
  type DefaultBranchName,
  defaultRegistry,
  type DefaultRegistryOptions,
} from "../src/gateway/branch_registry.ts";
import { DownstreamStats } from "../sim/downstream_stats.ts";
import type { Fetcher } from "../src/gateway/fetcher.ts";

/** Options of {@linkcode gatewayOverDownstream}. */
export interface GatewaySetupOptions {
  /** Query for each branch's calls; every branch answers at once unless this says otherwise. */
  query?: (branch: DefaultBranchName) => Record<string, string> | undefined;
  /** Replaces branches' own timeouts. */
  timeoutMs?: Partial<Record<DefaultBranchName, number>>;
  /** Branches the downstream always fails. */
  failBranches?: DefaultBranchName[];
  /** Wraps the in-process downstream, to watch what the gateway sends it. */
  wrap?: (downstream: Fetcher) => Fetcher;
  /** Breakers and retries per branch. */
  resilience?: DefaultRegistryOptions["resilience"];
}

/** The gateway and the downstream's counters. */
export function gatewayOverDownstream(
  { query, timeoutMs, failBranches, wrap = (d) => d, resilience }: GatewaySetupOptions = {},
) {
  const stats = new DownstreamStats();
  const downstream = createDownstream({ stats, tailEvery: 0, failBranches });
  const registry = defaultRegistry(wrap(downstream), {
    query: (branch) => ({ latencyMs: "0", ...query?.(branch) }),
    timeoutMs,
    resilience,
  });
  return { app: createApp({ registry }), stats };
}
