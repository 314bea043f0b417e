import type { Type as TypeBox } from 'typebox';

/**
 * The TypeBox builders we use, as plain JSON Schema at runtime. Route and tool schemas keep
 * TypeBox's types (so `Static<>` and Fastify's type provider infer request types), but loading
 * TypeBox itself cost ~20 MB of memory at start for a few dozen schema objects; these build the
 * same JSON (test/json-schema.test.ts compares them).
 */
const optional = new WeakSet<object>();

function stringSchema(options?: object) {
  return { type: 'string', ...options };
}
function integerSchema(options?: object) {
  return { type: 'integer', ...options };
}
function numberSchema(options?: object) {
  return { type: 'number', ...options };
}
function booleanSchema(options?: object) {
  return { type: 'boolean', ...options };
}
function nullSchema(options?: object) {
  return { type: 'null', ...options };
}
function unknownSchema(options?: object) {
  return { ...options };
}
function unsafeSchema(schema: object) {
  return { ...schema };
}
function literalSchema(value: string | number | boolean, options?: object) {
  return { type: typeof value, const: value, ...options };
}
function arraySchema(items: object, options?: object) {
  return { type: 'array', items, ...options };
}
function unionSchema(anyOf: object[], options?: object) {
  return { anyOf, ...options };
}
/** Only string keys are used here: TypeBox writes them as one catch-all pattern. */
function recordSchema(_key: object, value: object, options?: object) {
  return { type: 'object', patternProperties: { '^.*$': value }, ...options };
}
function optionalSchema(schema: object) {
  const copy = { ...schema };
  optional.add(copy);
  return copy;
}
function objectSchema(properties: Readonly<Record<string, object>>, options?: object) {
  const required = Object.keys(properties).filter((name) => !optional.has(properties[name]!));
  return { type: 'object', ...(required.length > 0 ? { required } : {}), properties, ...options };
}

export const Type = {
  String: stringSchema,
  Integer: integerSchema,
  Number: numberSchema,
  Boolean: booleanSchema,
  Null: nullSchema,
  Unknown: unknownSchema,
  Unsafe: unsafeSchema,
  Literal: literalSchema,
  Array: arraySchema,
  Union: unionSchema,
  Record: recordSchema,
  Optional: optionalSchema,
  Object: objectSchema,
} as unknown as Pick<
  typeof TypeBox,
  'String' | 'Integer' | 'Number' | 'Boolean' | 'Null' | 'Unknown' | 'Unsafe' | 'Literal' | 'Array' | 'Union' | 'Record' | 'Optional' | 'Object'
>;
