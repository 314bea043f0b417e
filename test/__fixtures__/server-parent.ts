// A stand-in for a vitest worker: starts a server with spawnServer, prints its pid, then waits to be
// killed. test/test-isolation.test.ts SIGKILLs this process and checks the server does not outlive it.
import { spawnServer } from '../support/server-process.js';

const server = await spawnServer({ ENABLE_PERSISTENCE: 'false', LOG_LEVEL: 'warn' }).ready;
process.stdout.write(`${server.child.pid}\n`);
setInterval(() => undefined, 60_000);
