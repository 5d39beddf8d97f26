/**
 * Plausible, deterministic response bodies for the simulated downstream's branches.
 *
 * @module
 */
import { fnv1a32 } from "./latency_model.ts";

const CARRIERS = ["dhl", "ups", "postnl", "colissimo"] as const;
const NAMES = ["Ada Lovelace", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov"] as const;
const TIERS = ["basic", "silver", "gold"] as const;

/** Most items of a simulated order. */
export const MAX_ORDER_ITEMS = 4;

/**
 * The JSON body `branch` returns for product `id`; the same id always gives the same body.
 * Unknown branch names get a generic `{ value }` body.
 *
 * The order endpoint's downstreams derive their ids from the order's, so that a token in the
 * order id (as the scripted downstream of the tests reads it) reaches the calls that follow:
 * order `o1` has customer `c-o1` and items `i1-o1` … `iN-o1`.
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
    case "orders":
      return {
        status: hash % 5 === 0 ? "shipped" : "open",
        totalCents: 999 + (hash % 50_000),
        customerId: `c-${id}`,
        itemIds: Array.from({ length: 1 + (hash % MAX_ORDER_ITEMS) }, (_, n) => `i${n + 1}-${id}`),
      };
    case "customers":
      return {
        id,
        name: NAMES[hash % NAMES.length],
        tier: TIERS[hash % TIERS.length],
        // Not for the page: an aggregation endpoint picks the fields it shows.
        internalNotes: `account ${hash}`,
      };
    case "items":
      return {
        sku: `sku-${hash % 100_000}`,
        title: `Item ${hash % 1_000}`,
        priceCents: 99 + (hash % 9_900),
      };
    default:
      return { value: hash };
  }
}
