import { describe, expect, it } from 'vitest';
import { Type as TypeBox } from 'typebox';
import { Type } from '../src/json-schema.js';

// Route and tool schemas are built without loading TypeBox at runtime; what they send to Ajv and
// to the OpenAPI document must be the JSON TypeBox itself would have built.
const same = (ours: unknown, theirs: unknown) => expect(JSON.stringify(ours)).toBe(JSON.stringify(theirs));

describe('JSON Schema builders match TypeBox', () => {
  it('scalars, with and without options', () => {
    same(Type.String(), TypeBox.String());
    same(Type.String({ minLength: 1, maxLength: 3, pattern: '^a', description: 'd' }), TypeBox.String({ minLength: 1, maxLength: 3, pattern: '^a', description: 'd' }));
    same(Type.Integer({ minimum: 1, maximum: 9 }), TypeBox.Integer({ minimum: 1, maximum: 9 }));
    same(Type.Number({ minimum: 0 }), TypeBox.Number({ minimum: 0 }));
    same(Type.Boolean(), TypeBox.Boolean());
    same(Type.Null(), TypeBox.Null());
    same(Type.Unknown(), TypeBox.Unknown());
    same(Type.Literal('a'), TypeBox.Literal('a'));
    same(Type.Literal(3), TypeBox.Literal(3));
    same(Type.Unsafe<string | null>({ type: ['string', 'null'], maxLength: 5 }), TypeBox.Unsafe<string | null>({ type: ['string', 'null'], maxLength: 5 }));
  });

  it('arrays, unions and records', () => {
    same(Type.Array(Type.String({ maxLength: 2 }), { maxItems: 4 }), TypeBox.Array(TypeBox.String({ maxLength: 2 }), { maxItems: 4 }));
    same(Type.Union([Type.Literal('a'), Type.Null()], { description: 'd' }), TypeBox.Union([TypeBox.Literal('a'), TypeBox.Null()], { description: 'd' }));
    same(Type.Record(Type.String(), Type.Unknown(), { description: 'm' }), TypeBox.Record(TypeBox.String(), TypeBox.Unknown(), { description: 'm' }));
  });

  it('objects: required lists the properties not wrapped in Optional, in order', () => {
    const ours = Type.Object(
      { a: Type.String(), b: Type.Optional(Type.Integer()), c: Type.Optional(Type.Union([Type.String(), Type.Null()])), d: Type.Boolean() },
      { additionalProperties: false, description: 'o' },
    );
    const theirs = TypeBox.Object(
      { a: TypeBox.String(), b: TypeBox.Optional(TypeBox.Integer()), c: TypeBox.Optional(TypeBox.Union([TypeBox.String(), TypeBox.Null()])), d: TypeBox.Boolean() },
      { additionalProperties: false, description: 'o' },
    );
    same(ours, theirs);
    same(Type.Object({}), TypeBox.Object({}));
    same(Type.Object({ x: Type.Optional(Type.String()) }), TypeBox.Object({ x: TypeBox.Optional(TypeBox.String()) }));
  });

  it('Optional marks a copy: the same schema stays required where it is used bare', () => {
    const name = Type.String();
    const schema = Type.Object({ first: Type.Optional(name), second: name });
    expect(schema.required).toEqual(['second']);
  });
});
