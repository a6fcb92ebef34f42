import type { Worker } from 'node:cluster';
import { ApiKeys } from './api-keys.ts';

/**
 * The API keys of a node:cluster server, both sides of the exchange. The primary reads and watches
 * API_KEYS_FILE and hands each worker the keys in force, as digests, when it starts and after each
 * reload: a worker that replaces a dead one starts with the keys the service holds, even when the
 * file has since become unreadable (a reload that fails keeps the keys in force).
 */

type KeysMessage = { type: 'anomaly-serve:keys-request' } | { type: 'anomaly-serve:keys'; digests: readonly string[] };

const isKeysMessage = (message: unknown): message is KeysMessage =>
  typeof (message as KeysMessage | undefined)?.type === 'string' && (message as KeysMessage).type.startsWith('anomaly-serve:keys');

/** In the primary: answers `worker`'s request for the keys. */
export function shareKeys(apiKeys: ApiKeys, worker: Worker): void {
  worker.on('message', (message: unknown) => {
    if (isKeysMessage(message) && message.type === 'anomaly-serve:keys-request') {
      worker.send({ type: 'anomaly-serve:keys', digests: apiKeys.digestsHex() } satisfies KeysMessage);
    }
  });
}

/** In the primary: sends every worker the keys after each reload of the file. */
export function broadcastReloads(apiKeys: ApiKeys, workers: () => Iterable<Worker>): void {
  apiKeys.onReload((digests) => {
    for (const worker of workers()) if (worker.isConnected()) worker.send({ type: 'anomaly-serve:keys', digests } satisfies KeysMessage);
  });
}

/** In a worker: the keys the primary holds, kept current as it reloads them. */
export function keysFromPrimary(): Promise<ApiKeys> {
  return new Promise((resolve) => {
    let apiKeys: ApiKeys | undefined;
    process.on('message', (message: unknown) => {
      if (!isKeysMessage(message) || message.type !== 'anomaly-serve:keys') return;
      if (apiKeys) return apiKeys.replace(message.digests);
      apiKeys = ApiKeys.ofDigests(message.digests);
      resolve(apiKeys);
    });
    process.send!({ type: 'anomaly-serve:keys-request' } satisfies KeysMessage);
  });
}
