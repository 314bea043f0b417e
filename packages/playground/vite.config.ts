import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// Built into dist/ and served by the server at /playground under a strict CSP: one script and one
// stylesheet file, no inline code (the module-preload polyfill would be inline-free but is not needed).
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/playground/',
  resolve: {
    // The client's source, so the page never depends on a stale build of it.
    alias: { '@agent-chassis/client': fileURLToPath(new URL('../client/src/index.ts', import.meta.url)) },
  },
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
  server: {
    // `npm run dev -w @agent-chassis/playground` next to `npm run dev`: the API is proxied.
    proxy: { '/api': 'http://127.0.0.1:8000', '/playground/config.json': 'http://127.0.0.1:8000' },
  },
});
