import { Type } from '../../json-schema.js';
import { defineTool } from '../types.js';

export const calculate = defineTool({
  name: 'calculate',
  description: 'Perform a basic arithmetic operation (add, subtract, multiply, divide) on two numbers.',
  parameters: Type.Object(
    {
      operation: Type.Union([Type.Literal('add'), Type.Literal('subtract'), Type.Literal('multiply'), Type.Literal('divide')], {
        description: 'The operation to perform',
      }),
      a: Type.Number({ description: 'First operand' }),
      b: Type.Number({ description: 'Second operand' }),
    },
    { additionalProperties: false },
  ),
  run({ operation, a, b }) {
    switch (operation) {
      case 'add':
        return String(a + b);
      case 'subtract':
        return String(a - b);
      case 'multiply':
        return String(a * b);
      case 'divide':
        if (b === 0) throw new Error('division by zero');
        return String(a / b);
    }
  },
});
