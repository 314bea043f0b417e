import type { Tool } from '../types.js';
import { calculate } from './calculate.js';
import { getServerTime } from './get-server-time.js';

/** Local tools offered by default. Adding one: a file beside these, and a line here. */
export const builtinTools: Tool[] = [calculate, getServerTime];
