#!/usr/bin/env node
// The `agent-chassis` command. A committed file, so npm links it at install time; the CLI itself is
// compiled to dist/ by `npm run build`.
import('../dist/cli.js').catch((error) => {
  if (error?.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/cli.js')) {
    process.stderr.write('agent-chassis is not built yet: run `npm run build` in the repository first.\n');
    process.exit(1);
  }
  throw error;
});
