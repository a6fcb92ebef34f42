import * as kplus from 'cdk8s-plus-27';
import type { Construct } from 'constructs';

const MOUNT_PATH = '/etc/anomaly-serve/api-keys';
const KEY = 'keys';

/** Where a pod mounts the API keys Secret, the Secret's entry, and the file it becomes (one key a line). */
export const API_KEYS = { mountPath: MOUNT_PATH, key: KEY, file: `${MOUNT_PATH}/${KEY}` } as const;

/**
 * The API keys Secret as a volume, its keys file only, readable by the pod's group (fsGroup) and
 * no one else. Mounted as a folder: a file mounted by subPath would never see the Secret's updates.
 */
export function apiKeysVolume(scope: Construct, secretName: string): kplus.Volume {
  return kplus.Volume.fromSecret(scope, 'ApiKeysVolume', kplus.Secret.fromSecretName(scope, 'ApiKeys', secretName), {
    name: 'api-keys',
    items: { [API_KEYS.key]: { path: API_KEYS.key } },
    defaultMode: 0o440,
  });
}
