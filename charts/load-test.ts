import { readFileSync } from 'node:fs';
import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { ENV } from '../app/settings.ts';
import { API_KEYS, apiKeysVolume } from './api-keys-volume.ts';
import { restrictedContainer, restrictPods } from './pod-security.ts';

/** The user of the Locust image (locustio/locust's own). */
const LOCUST_USER = 1000;

export interface LoadTestShape {
  /** @default 200 */
  readonly peakUsers?: number;
  /** @default 120 */
  readonly rampUpSeconds?: number;
  /** @default 300 */
  readonly plateauSeconds?: number;
  /** @default 120 */
  readonly rampDownSeconds?: number;
}

export interface LoadTestProps {
  /** The URL Locust loads, e.g. `http://anomaly-serve` (the Service, in the same namespace). */
  readonly host: string;
  /** @default 'load-test' */
  readonly name?: string;
  /** @default 'locustio/locust:2.31.8' */
  readonly image?: string;
  /** Worker pods, each generating load. @default 2 */
  readonly workers?: number;
  /** The locustfile's source. @default loadtest/locustfile.py */
  readonly locustfile?: string;
  /** The ramp-up, plateau and ramp-down, instead of users set in the web UI. @default users set in the web UI */
  readonly shape?: LoadTestShape;
  /** The server's API keys Secret (the AnomalyDetector's apiKeysSecret): the workers send its first key. @default none: no key sent */
  readonly apiKeysSecret?: string;
}

/** The label every pod of a LoadTest carries, which the AnomalyDetector's NetworkPolicy admits. */
export const LOAD_TEST_POD_LABELS = { 'app.kubernetes.io/name': 'locust' } as const;

const MOUNT = '/mnt/locust';
const WEB_PORT = 8089;
const MASTER_PORT = 5557;

/**
 * A distributed Locust: a master with its web UI on a ClusterIP Service (port 8089; reach it with
 * `kubectl port-forward`), and a Deployment of workers, running the project's locustfile from a
 * ConfigMap against a host, normally the AnomalyDetector's Service.
 */
export class LoadTest extends Construct {
  readonly configMap: kplus.ConfigMap;
  readonly master: kplus.Deployment;
  readonly masterService: kplus.Service;
  readonly workers: kplus.Deployment;

  constructor(scope: Construct, id: string, props: LoadTestProps) {
    super(scope, id);
    const workers = props.workers ?? 2;
    if (!Number.isInteger(workers) || workers < 1) throw new Error(`LoadTest: workers (${workers}) must be a whole number of at least 1`);
    if (!/^https?:\/\/[^\s/]+/.test(props.host)) throw new Error(`LoadTest: host (${props.host}) must be an http:// or https:// URL`);
    for (const [key, value] of Object.entries(props.shape ?? {})) {
      if (!Number.isInteger(value) || value < 1) throw new Error(`LoadTest: shape.${key} (${value}) must be a whole number of at least 1`);
    }
    const name = props.name ?? 'load-test';
    const image = props.image ?? 'locustio/locust:2.31.8';
    // The locustfile asks the server for the model it serves: the chart needs no copy of it.
    this.configMap = new kplus.ConfigMap(this, 'Files', {
      metadata: { name },
      data: { 'locustfile.py': props.locustfile ?? readFileSync('loadtest/locustfile.py', 'utf8') },
    });
    const files = kplus.Volume.fromConfigMap(this, 'FilesVolume', this.configMap, { name: 'locustfile' });
    const tmp = kplus.Volume.fromEmptyDir(this, 'TmpVolume', 'tmp');
    const env = { HOME: kplus.EnvValue.fromValue('/tmp') };
    const shapeEnv: Record<string, kplus.EnvValue> = props.shape
      ? {
          LOAD_SHAPE: kplus.EnvValue.fromValue('ramp'),
          PEAK_USERS: kplus.EnvValue.fromValue(String(props.shape.peakUsers ?? 200)),
          RAMP_UP_SECONDS: kplus.EnvValue.fromValue(String(props.shape.rampUpSeconds ?? 120)),
          PLATEAU_SECONDS: kplus.EnvValue.fromValue(String(props.shape.plateauSeconds ?? 300)),
          RAMP_DOWN_SECONDS: kplus.EnvValue.fromValue(String(props.shape.rampDownSeconds ?? 120)),
        }
      : {};

    // Only the workers send requests, so only they see the keys.
    const keys = props.apiKeysSecret ? apiKeysVolume(this, props.apiKeysSecret) : undefined;
    const keyEnv: Record<string, kplus.EnvValue> = keys ? { [ENV.apiKeysFile]: kplus.EnvValue.fromValue(API_KEYS.file) } : {};

    const pod = (role: string, replicas: number, args: string[], ports: kplus.ContainerPort[], cpu: number) => {
      const labels = { ...LOAD_TEST_POD_LABELS, 'app.kubernetes.io/instance': name, 'app.kubernetes.io/component': role };
      const deployment = new kplus.Deployment(this, role === 'master' ? 'Master' : 'Workers', {
        metadata: { name: `${name}-${role}`, labels },
        replicas,
        select: false,
        podMetadata: { labels },
        automountServiceAccountToken: false,
        // fsGroup: the Secret's files (mode 0440) belong to the group, so the user can read the key.
        securityContext: { ensureNonRoot: true, user: LOCUST_USER, group: LOCUST_USER, fsGroup: LOCUST_USER },
      });
      deployment.select(kplus.LabelSelector.of({ labels }));
      deployment.addContainer({
        name: 'locust',
        image,
        imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
        args: ['-f', `${MOUNT}/locustfile.py`, ...args],
        envVariables: { ...env, ...(role === 'master' ? shapeEnv : keyEnv) },
        ports,
        volumeMounts: [
          { path: MOUNT, volume: files, readOnly: true },
          { path: '/tmp', volume: tmp },
          ...(keys && role === 'worker' ? [{ path: API_KEYS.mountPath, volume: keys, readOnly: true }] : []),
        ],
        resources: { cpu: { request: kplus.Cpu.millis(cpu) }, memory: { request: Size.mebibytes(128), limit: Size.mebibytes(512) } },
        securityContext: restrictedContainer(LOCUST_USER),
      });
      restrictPods(deployment);
      return { deployment, labels };
    };

    const master = pod('master', 1, ['--master', '--host', props.host], [{ number: WEB_PORT, name: 'web' }, { number: MASTER_PORT, name: 'master' }], 250);
    this.master = master.deployment;
    this.masterService = new kplus.Service(this, 'MasterService', {
      metadata: { name: `${name}-master` },
      type: kplus.ServiceType.CLUSTER_IP,
      selector: kplus.Pods.select(this, 'MasterPods', { labels: master.labels }),
      ports: [
        { port: WEB_PORT, targetPort: WEB_PORT, name: 'web' },
        { port: MASTER_PORT, targetPort: MASTER_PORT, name: 'master' },
      ],
    });
    this.workers = pod('worker', workers, ['--worker', '--master-host', `${name}-master`], [], 500).deployment;
  }
}
