import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/**
 * Lets the server close without waiting on connections that carry no request: from the moment
 * closing begins until the server has closed, idle keep-alive connections are closed (also those
 * that become idle later, like a stream that was writing its last event), and so are connections
 * that never sent a byte (a client's or balancer's pre-opened socket), which Node counts as busy
 * until its headers timeout (60 s) would end them.
 */
export function closeUnusedConnectionsOnClose(app: FastifyInstance): void {
  const sockets = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  let sweeper: NodeJS.Timeout | undefined;
  const sweep = () => {
    app.server.closeIdleConnections();
    for (const socket of sockets) if (socket.bytesRead === 0) socket.destroy();
  };
  app.addHook('preClose', async () => {
    sweep();
    sweeper = setInterval(sweep, 100);
  });
  app.addHook('onClose', async () => clearInterval(sweeper));
}
