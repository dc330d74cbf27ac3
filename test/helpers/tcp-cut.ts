/**
 * A TCP relay on loopback that can cut the network without closing anything: while cut, bytes in
 * either direction are held back (as when a cable is pulled or a firewall drops packets, so neither
 * side sees a reset), and `heal()` lets them through again. For "the leader lost the network".
 */
import net from 'node:net';

export interface TcpCut {
  port: number;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startTcpCut(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpCut> {
  const sockets = new Set<net.Socket>();
  /** Bytes held back while cut, with where they go, in arrival order. */
  let held: Array<{ to: net.Socket; chunk: Buffer }> = [];
  let severed = false;
  const relay = (from: net.Socket, to: net.Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (severed) held.push({ to, chunk });
      else to.write(chunk);
    });
    from.on('close', () => to.destroy());
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    }
    relay(client, upstream);
    relay(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      severed = true;
    },
    heal() {
      severed = false;
      const pending = held;
      held = [];
      for (const { to, chunk } of pending) if (!to.destroyed) to.write(chunk);
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
