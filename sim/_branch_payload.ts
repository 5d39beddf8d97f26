/**
 * Plausible, deterministic response bodies for the simulated downstream's branches.
 *
 * @module
 */
import { fnv1a32 } from "./latency_model.ts";

const CARRIERS = ["dhl", "ups", "postnl", "colissimo"] as const;

/**
 * The JSON body `branch` returns for product `id`; the same id always gives the same body.
 * Unknown branch names get a generic `{ value }` body.
 *
 * @example
 * ```ts
 * import { branchPayload } from "./_branch_payload.ts";
 *
 * branchPayload("price", "sku-42"); // { amountCents: ..., currency: "EUR" }
 * ```
 */
export function branchPayload(branch: string, id: string): Record<string, unknown> {
  const hash = fnv1a32(`${branch}\0${id}`);
  switch (branch) {
    case "price":
      return { amountCents: 499 + (hash % 20_000), currency: "EUR" };
    case "inventory": {
      const quantity = hash % 40;
      return { inStock: quantity > 0, quantity, warehouse: `wh-${hash % 7}` };
    }
    case "reviews":
      return { rating: 1 + (hash % 41) / 10, count: hash % 2_500 };
    case "recommendations":
      return {
        productIds: [1, 2, 3, 4].map((n) => `sku-${fnv1a32(`${id}\0${n}`) % 100_000}`),
      };
    case "shipping":
      return { carrier: CARRIERS[hash % CARRIERS.length], etaDays: 1 + (hash % 5) };
    default:
      return { value: hash };
  }
}
