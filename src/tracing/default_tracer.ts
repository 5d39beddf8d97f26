/**
 * fanfare's tracer from the globally registered OpenTelemetry provider.
 *
 * @module
 */
import { trace, type Tracer } from "@opentelemetry/api";

/** The instrumentation scope of fanfare's spans. */
export const TRACER_NAME = "fanfare";

/**
 * fanfare's tracer through `@opentelemetry/api`: a proxy that follows whatever provider is
 * registered globally, now or later, and records nothing (a no-op) while none is.
 *
 * @example
 * ```ts
 * import { defaultTracer } from "./default_tracer.ts";
 *
 * const span = defaultTracer().startSpan("work"); // non-recording until a provider registers
 * span.end();
 * ```
 */
export function defaultTracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}
