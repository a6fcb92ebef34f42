import { isIP } from 'node:net';

/**
 * The rules of Kubernetes and Google Cloud values that props and synth settings are checked
 * against, each written once.
 */

/** A namespace's (or any DNS label's) name: lower-case letters, digits and "-", at most 63. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** A DNS subdomain, the name of most objects (a Secret's, say): DNS labels joined by ".", at most 253. */
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** An IPv4 or IPv6 CIDR block, its prefix within the address' length. */
export function isCidr(range: string): boolean {
  const [address, prefix, ...rest] = range.split('/');
  if (rest.length > 0 || address === undefined || prefix === undefined || !/^\d{1,3}$/.test(prefix)) return false;
  const version = isIP(address);
  return version !== 0 && Number(prefix) <= (version === 4 ? 32 : 128);
}

/** A container's port number. */
export const isContainerPort = (port: number) => Number.isInteger(port) && port >= 1 && port <= 65535;

/** The ports a NodePort Service may take (the API server's default range). */
export const NODE_PORTS = { min: 30000, max: 32767 } as const;

const SUFFIXES: Record<string, number> = { m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

/** A Kubernetes quantity ("500m", "1Gi") as a number, for comparisons. */
export function parseQuantity(quantity: string): number {
  const match = /^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(quantity);
  if (!match) throw new Error(`"${quantity}" is not a Kubernetes quantity such as 500m, 2, 256Mi or 1Gi`);
  return Number(match[1]) * SUFFIXES[match[2] ?? '']!;
}

/** A Cloud Storage folder, gs://bucket/path (a bucket's name: 3-222 of a-z, 0-9, ".", "_", "-"). */
export const GCS_FOLDER = /^gs:\/\/[a-z0-9][a-z0-9._-]{1,220}(\/.*)?$/;

/** A Google Cloud project ID. */
export const GCP_PROJECT_ID = /^[a-z][-a-z0-9]{4,28}[a-z0-9]$/;

/** A Google service account, name@project.iam.gserviceaccount.com. */
export const GCP_SERVICE_ACCOUNT = /^[a-z][-a-z0-9]{4,28}[a-z0-9]@[-a-z0-9.]+\.iam\.gserviceaccount\.com$/;
