// A loopback port that never completes a TCP handshake: a listener that never accepts, with its
// accept queue filled, so the kernel drops further SYNs and a client's connect hangs until its own
// connect timeout. Node accepts every connection itself, so the listener is a small python3 process.
import { spawn } from 'node:child_process';
import { once } from 'node:events';

const SCRIPT = `
import socket, sys, time
listener = socket.socket()
listener.bind(('127.0.0.1', 0))
listener.listen(0)
port = listener.getsockname()[1]
held = []
for _ in range(8):
    filler = socket.socket()
    filler.setblocking(False)
    try:
        filler.connect(('127.0.0.1', port))
    except BlockingIOError:
        pass
    held.append(filler)
time.sleep(0.2)
print(port, flush=True)
sys.stdin.read()
`;

export interface Blackhole {
  url: string;
  close(): Promise<void>;
}

export async function startBlackhole(): Promise<Blackhole> {
  const child = spawn('python3', ['-c', SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const port = Number(String(line).trim());
  if (!Number.isInteger(port) || port <= 0) throw new Error(`blackhole: no port (${String(line)})`);
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: async () => {
      // Closing its stdin ends it; it exits with the listener and the held sockets.
      const exited = once(child, 'exit');
      child.stdin!.end();
      await exited;
    },
  };
}
