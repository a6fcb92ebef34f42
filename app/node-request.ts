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
  const value = incoming.headers[name];
  // An array only for Set-Cookie, which requests do not carry.
  return typeof value === 'string' ? value : undefined;
}
