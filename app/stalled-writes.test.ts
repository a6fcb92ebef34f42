import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closeStalledWrites } from './stalled-writes.ts';

const TIMEOUT_MS = 300;
const INTERVAL_MS = 50;
/** More than the kernel's buffers of a loopback connection take (4 MiB to send, 6 MiB to receive by default). */
const ANSWER_BYTES = 32 * 1024 * 1024;

let server: Server;
/** Resolves when the server's side of the next connection closes: a client that does not read sees no close. */
let serverSideClosed: Promise<number>;
afterEach(() => new Promise((resolve) => server.close(resolve)));

/** A server answering every request with ANSWER_BYTES, after `delayMs`, its stalled writes closed. */
async function serve(delayMs = 0): Promise<number> {
  // Connection: close, so that the server ends the connection once the whole answer is written.
  server = createServer((_, res) => setTimeout(() => res.writeHead(200, { Connection: 'close' }).end(Buffer.alloc(ANSWER_BYTES)), delayMs));
  closeStalledWrites(server, TIMEOUT_MS, INTERVAL_MS);
  serverSideClosed = new Promise((resolve) => server.once('connection', (socket: Socket) => socket.once('close', () => resolve(Date.now()))));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/**
 * Asks for an answer and reads it as `read` says (called with each chunk's size and the socket):
 * the bytes received by the time the connection closed, on `side`, and when it did.
 */
async function ask(port: number, side: 'server' | 'client', read: (bytes: number, socket: Socket) => void = () => {}) {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  const start = Date.now();
  let received = 0;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    read(chunk.length, socket);
  });
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  const ended = await (side === 'server' ? serverSideClosed : new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now()))));
  socket.destroy();
  return { received, ms: ended - start };
}

describe('closeStalledWrites', () => {
  it('closes the connection of a client that stops reading its answer, once it has not moved for the timeout', async () => {
    const port = await serve();
    // Reads the first chunk, then nothing.
    const { received, ms } = await ask(port, 'server', (_, socket) => socket.pause());
    expect(received).toBeLessThan(ANSWER_BYTES);
    expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS);
    expect(ms).toBeLessThan(TIMEOUT_MS + 20 * INTERVAL_MS);
  });

  it('keeps a client that reads slowly, in bursts apart by less than the timeout, for as long as its answer takes', async () => {
    const port = await serve();
    let burst = 0;
    const { received, ms } = await ask(port, 'client', (bytes, socket) => {
      if ((burst += bytes) < 4 * 1024 * 1024) return;
      burst = 0;
      socket.pause();
      setTimeout(() => socket.resume(), TIMEOUT_MS / 2);
    });
    expect(received).toBeGreaterThanOrEqual(ANSWER_BYTES);
    // Long enough that the answer waited on the client at several checks.
    expect(ms).toBeGreaterThan(2 * TIMEOUT_MS);
  });

  it('leaves a connection alone while its answer is being computed, however long: nothing waits to be written', async () => {
    const port = await serve(3 * TIMEOUT_MS);
    const { received } = await ask(port, 'client');
    expect(received).toBeGreaterThanOrEqual(ANSWER_BYTES);
  });
});
