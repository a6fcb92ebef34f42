import http from 'node:http';

/** How a request ended: its status, headers and body, or its socket error's code. */
export interface Outcome {
  readonly status?: number;
  readonly error?: string;
  readonly headers?: http.IncomingHttpHeaders;
  readonly body?: string;
}

export interface PostOptions {
  /** The connection's agent (keep-alive, one socket), as a client holding its connection has it. @default a connection of its own */
  readonly agent?: http.Agent;
  readonly headers?: Record<string, string>;
  /** Gives up after this long without an answer, as error TIMEOUT. @default no limit */
  readonly timeoutMs?: number;
}

/** One POST of a JSON body with node:http; never rejects: what a client saw, for the lifecycle tests. */
export function post(url: string, body: string, { agent, headers = {}, timeoutMs }: PostOptions = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const request = http.request(url, { method: 'POST', agent, headers: { 'Content-Type': 'application/json', ...headers } }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode, headers: response.headers, body: text }));
    });
    request.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
    if (timeoutMs !== undefined) request.setTimeout(timeoutMs, () => request.destroy(Object.assign(new Error(`no answer in ${timeoutMs} ms`), { code: 'TIMEOUT' })));
    request.end(body);
  });
}
