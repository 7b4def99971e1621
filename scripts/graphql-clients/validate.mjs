// Validates the example operations of docs/graphql/ against the schema a
// running Basalt serves, with graphql-js (the reference implementation):
// the schema comes from introspection (getIntrospectionQuery, then
// buildClientSchema, which refuses a malformed introspection answer), and
// every file must parse and pass `validate`. Also checked, so the examples
// stay a complete and honest guide: every operation is named, and no name is
// used twice; every root field of Query, Mutation and Subscription appears
// in some operation; each `# Variables: {…}` comment right above an
// operation is JSON that the operation's variables accept; at least 10
// operations in all.
//
// Usage: node validate.mjs BASE_URL [DOCS_DIR]   (DOCS_DIR: docs/graphql)
// Environment: GRAPHQL_CLIENTS_DIR, the folder whose node_modules holds
// graphql (default: this script's folder); scripts/graphql-clients.sh
// installs it into a cache with `npm ci`.
import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(process.env.GRAPHQL_CLIENTS_DIR ?? here, "noop.cjs"));
const graphql = require("graphql");
const {
  Kind,
  Source,
  buildClientSchema,
  getIntrospectionQuery,
  getVariableValues,
  parse,
  validate,
} = graphql;

const MIN_OPERATIONS = 10;

const [base, docsArg] = process.argv.slice(2);
if (!base) {
  console.error("usage: node validate.mjs BASE_URL [DOCS_DIR]");
  process.exit(2);
}
const docsDir = resolve(docsArg ?? join(here, "..", "..", "docs", "graphql"));
const problems = [];
const problem = (where, message) => problems.push(`${where}: ${message}`);

/** The schema the server at `base` serves, by introspection over POST. */
async function fetchSchema() {
  const query = getIntrospectionQuery({
    descriptions: true,
    specifiedByUrl: true,
    directiveIsRepeatable: true,
    schemaDescription: true,
    inputValueDeprecation: true,
  });
  const response = await fetch(`${base}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/graphql-response+json, application/json" },
    body: JSON.stringify({ query, operationName: "IntrospectionQuery" }),
  });
  const text = await response.text();
  if (!response.ok) {
    throw new Error(`introspection answered ${response.status}: ${text.slice(0, 500)}`);
  }
  const body = JSON.parse(text);
  if (body.errors?.length) {
    throw new Error(`introspection answered errors: ${JSON.stringify(body.errors)}`);
  }
  // Throws on an answer that is not a valid schema.
  return buildClientSchema(body.data);
}

/** The root fields an operation selects (directly or in inline fragments). */
function rootFields(selectionSet, out = new Set()) {
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) out.add(selection.name.value);
    else if (selection.kind === Kind.INLINE_FRAGMENT) rootFields(selection.selectionSet, out);
  }
  return out;
}

/**
 * The JSON object after `Variables:` in the comment lines right above
 * `offset` in `text`, or undefined when there is none. It may span lines
 * and be followed by prose.
 */
function exampleVariables(text, offset) {
  const lines = text.slice(0, offset).split("\n");
  lines.pop(); // the operation's own line, up to its start
  const comment = [];
  while (lines.length && lines[lines.length - 1].trimStart().startsWith("#")) {
    comment.unshift(lines.pop().trimStart().replace(/^#/, ""));
  }
  const block = comment.join("\n");
  const at = block.indexOf("Variables:");
  if (at < 0) return undefined;
  const start = block.indexOf("{", at);
  if (start < 0) throw new Error("`Variables:` is not followed by a JSON object");
  let depth = 0;
  let inString = false;
  for (let i = start; i < block.length; i++) {
    const c = block[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{") depth++;
    else if (c === "}" && --depth === 0) return JSON.parse(block.slice(start, i + 1));
  }
  throw new Error("the JSON object after `Variables:` is not closed");
}

let schema;
try {
  schema = await fetchSchema();
} catch (error) {
  console.error(`validate.mjs: no schema from ${base}/graphql: ${error.message}`);
  process.exit(1);
}

const files = readdirSync(docsDir)
  .filter((name) => name.endsWith(".graphql"))
  .sort();
const names = new Map();
const used = { query: new Set(), mutation: new Set(), subscription: new Set() };
let operations = 0;
for (const name of files) {
  const path = join(docsDir, name);
  const where = relative(process.cwd(), path);
  const text = readFileSync(path, "utf8");
  let document;
  try {
    document = parse(new Source(text, where));
  } catch (error) {
    problem(where, error.toString());
    continue;
  }
  for (const error of validate(schema, document)) problem(where, error.toString());
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    operations++;
    const line = text.slice(0, definition.loc.start).split("\n").length;
    const opWhere = `${where}:${line}`;
    const opName = definition.name?.value;
    if (!opName) {
      problem(opWhere, `an anonymous ${definition.operation}: name it (clients send operationName)`);
      continue;
    }
    if (names.has(opName)) problem(opWhere, `operation ${opName} is also defined at ${names.get(opName)}`);
    names.set(opName, opWhere);
    for (const field of rootFields(definition.selectionSet)) used[definition.operation].add(field);
    let example;
    try {
      example = exampleVariables(text, definition.loc.start);
    } catch (error) {
      problem(opWhere, `${opName}'s example variables: ${error.message}`);
      continue;
    }
    if (example === undefined) continue;
    const coerced = getVariableValues(schema, definition.variableDefinitions ?? [], example);
    for (const error of coerced.errors ?? []) {
      problem(opWhere, `${opName}'s example variables: ${error.message}`);
    }
  }
}

const roots = {
  query: schema.getQueryType(),
  mutation: schema.getMutationType(),
  subscription: schema.getSubscriptionType(),
};
for (const [kind, type] of Object.entries(roots)) {
  for (const field of Object.keys(type?.getFields() ?? {})) {
    if (!used[kind].has(field)) problem(docsDir, `no example ${kind} selects ${type.name}.${field}`);
  }
}
if (operations < MIN_OPERATIONS) {
  problem(docsDir, `${operations} operations found; at least ${MIN_OPERATIONS} expected`);
}

if (problems.length) {
  console.error(`graphql-js ${graphql.version}: ${problems.length} problem(s) in the examples:`);
  for (const line of problems) console.error(`  ${line}`);
  process.exit(1);
}
const counted = Object.entries(used)
  .map(([kind, fields]) => `${fields.size} ${kind} fields`)
  .join(", ");
console.log(
  `graphql-js ${graphql.version}: ${operations} operations in ${files.length} files valid against ` +
    `the introspected schema (${counted})`,
);
