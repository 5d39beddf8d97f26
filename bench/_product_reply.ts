/**
 * What the load generators keep of a product answer: its status and a summary of its body,
 * small enough to hold for every request of a step.
 *
 * @module
 */
import type { Reply } from "./_open_loop.ts";

/** What the load generator keeps of a product answer: enough for the status and degraded mix. */
export interface ProductSummary {
  /** Branches named in `degraded` (0 for a full answer; absent on non-200 answers). */
  degraded?: number;
  /** Branches present in `product`. */
  present: number;
  /**
   * Whether a 503 came from admission (`{ error: "overloaded", reason }`, before anything ran)
   * rather than from the route (the global ceiling's queue was full, or it kept a required
   * branch from running).
   */
  shedAtAdmission?: boolean;
}

/**
 * A product answer reduced to its {@linkcode ProductSummary}, its body read whole.
 *
 * @example
 * ```ts
 * import { productReply } from "./_product_reply.ts";
 * const reply = await productReply(Response.json({ product: { price: 1 }, degraded: [] }));
 * reply.body; // { degraded: 0, present: 1 }
 * ```
 */
export async function productReply(response: Response): Promise<Reply> {
  const body = await response.json() as {
    degraded?: string[];
    product?: object;
    error?: string;
    reason?: unknown;
  };
  const summary: ProductSummary = {
    degraded: body.degraded?.length,
    present: body.product === undefined ? 0 : Object.keys(body.product).length,
  };
  // Admission's 503 names its reason; the ceiling's full queue answers "overloaded" too, after.
  if (response.status === 503) {
    summary.shedAtAdmission = body.error === "overloaded" && typeof body.reason === "string";
  }
  return { status: response.status, body: summary };
}
