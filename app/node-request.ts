import type { IncomingMessage } from 'node:http';
import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';

/** Node.js's own request under Hono's; undefined without one (Hono's `app.request` in tests). */
export const incomingOf = (c: Context): IncomingMessage | undefined => (c.env as HttpBindings | undefined)?.incoming;

/**
 * A request header, by its lower-case name, as Node.js parsed it: a property read. Hono's
 * `c.req.header` goes through @hono/node-server's Headers, which checks the name against a regular
 * expression and normalises the value on every call, several times a request on the hot path.
 * Node.js joins a repeated header with ", " as the Fetch API does (keeping only the first of a few,
 * Content-Length among them, which llhttp refuses to see differ). Without Node.js's request it is
 * read through the Fetch API.
 */
export function requestHeader(c: Context, name: Lowercase<string>): string | undefined {
  const incoming = incomingOf(c);
  if (incoming === undefined) return c.req.header(name);
  const { headers } = incoming;
  // The headers read on every request, each by a property read of its own: one read of any name
  // sees many names, and V8 looks each up through its megamorphic cache (about 120 instructions a
  // read, where a read of one name is a few; docs/benchmarks.md).
  let value: string | string[] | undefined;
  switch (name) {
    case 'content-length':
      value = headers['content-length'];
      break;
    case 'content-encoding':
      value = headers['content-encoding'];
      break;
    case 'accept-encoding':
      value = headers['accept-encoding'];
      break;
    default:
      value = headers[name];
  }
  // An array only for Set-Cookie, which requests do not carry.
  return typeof value === 'string' ? value : undefined;
}
