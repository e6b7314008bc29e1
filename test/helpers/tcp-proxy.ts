import net from 'node:net';

/**
 * A loopback TCP proxy in front of a real server, to make it hang (`pause`: bytes stop flowing,
 * connections stay open, as with a frozen host) or vanish (`cut`: every connection reset) and come back.
 */
export interface TcpProxy {
  port: number;
  pause(): void;
  cut(): void;
  resume(): void;
  /**
   * Forwards new connections again but never the ones open now, which stay silent with no reset:
   * as when a firewall or NAT loses its state, or the server's address moves to a standby.
   */
  resumeNewOnly(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  let mode: 'flowing' | 'paused' | 'cut' = 'flowing';
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  /** Connections left silent by resumeNewOnly, closed with the proxy. */
  const lost: Array<{ client: net.Socket; upstream: net.Socket }> = [];
  const server = net.createServer((client) => {
    if (mode === 'cut') {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    const pair = { client, upstream };
    pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    // Data is held back (not dropped) while paused, as a stalled network would; after pipe(), which resumes.
    if (mode === 'paused') {
      client.pause();
      upstream.pause();
    }
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    pause() {
      mode = 'paused';
      for (const { client, upstream } of pairs) {
        client.pause();
        upstream.pause();
      }
    },
    cut() {
      mode = 'cut';
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    resumeNewOnly() {
      mode = 'flowing';
      lost.push(...pairs);
      pairs.clear();
    },
    resume() {
      mode = 'flowing';
      for (const { client, upstream } of pairs) {
        client.resume();
        upstream.resume();
      }
    },
    async close() {
      for (const { client, upstream } of [...pairs, ...lost]) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
