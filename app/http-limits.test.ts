import { connect, type Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HTTP_LIMITS } from './contract.ts';
import { DEFAULTS } from './settings.ts';
import { bundledExample } from '../test/bundled-model.ts';
import { spawnServer, type ServerProcess } from '../lib/server-process.ts';

/** A raw connection to the server, and everything it has sent, until it closes. */
async function open(url: string): Promise<{ socket: Socket; received: () => string; closed: Promise<number> }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise((resolve) => socket.once('connect', resolve));
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  const start = Date.now();
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve((Date.now() - start) / 1000)));
  return { socket, received: () => received, closed };
}

const body = JSON.stringify({ instances: [bundledExample('normal')] });

describe('HTTP limits, through a real socket', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await spawnServer({ HEADERS_TIMEOUT_SECONDS: '1', REQUEST_TIMEOUT_SECONDS: '2', KEEP_ALIVE_TIMEOUT_SECONDS: '1' });
  });
  afterAll(() => server.stop());

  it('answers 408 and closes a connection whose headers do not arrive within HEADERS_TIMEOUT_SECONDS', async () => {
    const connection = await open(server.url);
    connection.socket.write('POST /predict HTTP/1.1\r\nHost: x\r\n'); // and never the end of the headers
    const seconds = await connection.closed;
    expect(connection.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(seconds).toBeGreaterThanOrEqual(0.9);
    expect(seconds).toBeLessThan(3.5);
  });

  it('answers 408 and closes a connection whose body does not arrive within REQUEST_TIMEOUT_SECONDS', async () => {
    const connection = await open(server.url);
    connection.socket.write(`POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
    const seconds = await connection.closed;
    expect(connection.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(seconds).toBeGreaterThanOrEqual(1.9);
    expect(seconds).toBeLessThan(4.5);
  });

  it('keeps an idle connection for KEEP_ALIVE_TIMEOUT_SECONDS, says so in Keep-Alive, then closes it', async () => {
    const connection = await open(server.url);
    connection.socket.write(`POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    const seconds = await connection.closed;
    expect(connection.received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(connection.received()).toMatch(/^Keep-Alive: timeout=1\r$/m);
    expect(seconds).toBeGreaterThanOrEqual(0.9);
  });

  it(`answers 431 to headers larger than ${HTTP_LIMITS.maxHeaderSizeBytes} bytes`, async () => {
    const connection = await open(server.url);
    connection.socket.write(`GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Padding: ${'a'.repeat(HTTP_LIMITS.maxHeaderSizeBytes)}\r\n\r\n`);
    await connection.closed;
    expect(connection.received()).toMatch(/^HTTP\/1\.1 431 /);
  });

  it(`answers 431 to more than ${HTTP_LIMITS.maxHeadersCount} headers: a Content-Encoding after them is never applied`, async () => {
    const gzipped = gzipSync(body);
    const request = (padding: number) => {
      const extra = Array.from({ length: padding }, (_, i) => `X-Padding-${i}: ${i}\r\n`).join('');
      return Buffer.concat([Buffer.from(`POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: ${gzipped.length}\r\nConnection: close\r\n${extra}Content-Encoding: gzip\r\n\r\n`), gzipped]);
    };
    const statusOf = async (padding: number) => {
      const connection = await open(server.url);
      connection.socket.write(request(padding));
      await connection.closed;
      return connection.received().slice(0, 12);
    };
    expect(await statusOf(HTTP_LIMITS.maxHeadersCount - 4)).toBe('HTTP/1.1 200'); // 100 headers in all
    expect(await statusOf(HTTP_LIMITS.maxHeadersCount)).toBe('HTTP/1.1 431'); // Node.js 24 refuses the request whole
  });
});

describe('HTTP limits, by default', () => {
  it('keep connections longer than Google Cloud load balancers do (600 s)', async () => {
    const server = await spawnServer({});
    try {
      const response = await fetch(`${server.url}/v2/health/live`);
      expect(response.headers.get('keep-alive')).toBe(`timeout=${DEFAULTS.keepAliveTimeoutSeconds}`);
      expect(DEFAULTS.keepAliveTimeoutSeconds).toBeGreaterThan(600);
    } finally {
      await server.stop();
    }
  });
});
