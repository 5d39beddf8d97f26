/**
 * Declarative aggregation: a graph of downstream calls where each branch starts as soon as the
 * branches it needs have answered, all of them inside one request budget.
 *
 * @example
 * ```ts
 * import { defineGraph, runGraph } from "./mod.ts";
 * const graph = defineGraph([{ name: "order" }, { name: "customer", needs: ["order"] }]);
 * const report = await runGraph(graph, () => ({ ok: true }), { budgetMs: 300 });
 * ```
 *
 * @module
 */

export { defineGraph, findCycle, type Graph, type GraphNode } from "./graph.ts";
export {
  type GraphContext,
  type GraphReport,
  type NodeOutcome,
  type NodeReport,
  runGraph,
  type RunGraphOptions,
} from "./run_graph.ts";
export {
  type AggregateConfig,
  type BranchConfig,
  ConfigError,
  configIssues,
  configSchema,
  DEFAULT_DOWNSTREAM,
  type EndpointConfig,
  jsonPath,
  parseConfig,
  type ProductBranchConfig,
  type ProductConfig,
} from "./config.ts";
export {
  type AggregateBranchReport,
  type AggregateNode,
  type AggregateReport,
  branchGuards,
  compileEndpoint,
  DEFAULT_FOR_EACH_MAX,
  type Endpoint,
  type EndpointRequest,
  type EndpointRunOptions,
  type EndpointSpec,
  runEndpoint,
} from "./endpoint.ts";
export { compileConfig, configFetchers } from "./downstreams.ts";
export { compileProduct, type CompileProductOptions } from "./product.ts";
export { type Shape, shapeAnswer } from "./shape.ts";
export {
  fillTemplate,
  parseTemplate,
  type Placeholder,
  readPath,
  type Template,
  type TemplateSource,
  type TemplateValues,
} from "./template.ts";
