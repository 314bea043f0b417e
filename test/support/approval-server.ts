// A server process like src/main.ts plus one local tool that needs approval and appends every call
// it really runs to $RECORD_FILE: what a restart test needs to prove a tool ran exactly once (or never).
import { appendFileSync } from 'node:fs';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { recordingTool } from './approvals.js';

const tool = recordingTool('delete_file');
const run = tool.run.bind(tool);
tool.run = (args, context) => {
  appendFileSync(process.env.RECORD_FILE!, `${JSON.stringify(args)}\n`);
  return run(args, context);
};

const config = loadConfig();
const app = await buildApp(config, { tools: [tool] });
process.on('SIGTERM', () => {
  app.chassis.shutdown().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
await app.listen({ port: config.port, host: config.host });
