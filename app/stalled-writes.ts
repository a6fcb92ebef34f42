import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** Where a connection's writing stood at a check, and since when it has stood there. */
interface Progress {
  readonly completed: number;
  readonly queued: number;
  readonly since: number;
}

/** Node.js's stream handle under a socket: libuv's count of the bytes of its writes the kernel has not taken yet. */
type WithHandle = Socket & { readonly _handle?: { readonly writeQueueSize?: number } | null };

/**
 * Closes a connection whose answer does not move for `timeoutMs` (WRITE_TIMEOUT_SECONDS): a client
 * that does not read its answers holds them in the server's memory no longer than that. The
 * connections are looked at every `intervalMs`, as Node.js checks headersTimeout and requestTimeout
 * (connectionsCheckingInterval), rather than timed on every read and write: a socket timeout
 * (`server.setTimeout`) is re-armed on each, 2.0k instructions a request (docs/benchmarks.md). A
 * connection with nothing left to write is not this check's: an idle one is keepAliveTimeout's, one
 * whose request is still arriving requestTimeout's. Stops when the server closes.
 */
export function closeStalledWrites(server: Server, timeoutMs: number, intervalMs = Math.min(1000, timeoutMs)): void {
  // Each open connection, with where its writing stood while an answer waited in it.
  const connections = new Map<Socket, Progress | undefined>();
  server.on('connection', (socket: Socket) => {
    connections.set(socket, undefined);
    socket.once('close', () => connections.delete(socket));
  });
  const check = setInterval(() => {
    const now = Date.now();
    for (const [socket, last] of connections) {
      if (socket.writableLength === 0) {
        connections.set(socket, undefined);
        continue;
      }
      // A write moves in Node.js when one completes, and in libuv as the kernel takes its bytes:
      // an answer of megabytes is one write, which the kernel may take for seconds.
      const completed = socket.bytesWritten - socket.writableLength;
      const queued = (socket as WithHandle)._handle?.writeQueueSize ?? 0;
      if (last === undefined || last.completed !== completed || last.queued !== queued) connections.set(socket, { completed, queued, since: now });
      else if (now - last.since >= timeoutMs) socket.destroy();
    }
  }, intervalMs).unref();
  server.once('close', () => clearInterval(check));
}
