import { Type } from '../../json-schema.js';
import { defineTool } from '../types.js';

export const getServerTime = defineTool({
  name: 'get_server_time',
  description: "Get the server's current date and time (ISO 8601, UTC).",
  parameters: Type.Object({}, { additionalProperties: false }),
  run() {
    return new Date().toISOString();
  },
});
