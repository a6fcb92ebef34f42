import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CERTIFICATE_MAP as CERTIFICATE_MAP } from '../charts/server-gateway.ts';

let scratch: string;
/** A stand-in gcloud first on the PATH: it logs every call and remembers what was created. */
let fakeGcloud: { env: NodeJS.ProcessEnv; calls: () => Promise<string[]> };
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'cluster-'));
  const bin = path.join(scratch, 'bin');
  const state = path.join(scratch, 'state');
  await mkdir(bin);
  await writeFile(
    path.join(bin, 'gcloud'),
    `#!/usr/bin/env bash
echo "$*" >> "${state}.log"
# A resource is named by the words before its first option, less the verb.
key() { local words=(); for word in "$@"; do case "$word" in create | describe) ;; --*) break ;; *) words+=("$word") ;; esac; done; echo "\${words[*]}"; }
case "$*" in
  *" describe "*" --format value(projectNumber)"*) echo 123456 ;;
  *" describe "*) grep -qxF "$(key "$@")" "${state}" 2>/dev/null ;;
  *" create "*) key "$@" >> "${state}" ;;
esac
`,
  );
  await chmod(path.join(bin, 'gcloud'), 0o755);
  fakeGcloud = {
    env: { PATH: `${bin}:${process.env.PATH}` },
    calls: async () => (await readFile(`${state}.log`, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean),
  };
});
afterAll(() => rm(scratch, { recursive: true, force: true }));

const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  promisify(execFile)('scripts/create-cluster.sh', args, { env: { ...process.env, CLOUDSDK_CONFIG: scratch, ...env } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );

const commands = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('+ gcloud '));

describe('scripts/create-cluster.sh --dry-run', () => {
  it('prints every gcloud command, with the defaults, and runs none', async () => {
    const { code, stdout } = await run(['--project', 'demo-project', '--dry-run'], fakeGcloud.env);
    expect(code).toBe(0);
    expect(await fakeGcloud.calls()).toEqual([]);
    expect(commands(stdout)).toEqual([
      '+ gcloud services enable container.googleapis.com artifactregistry.googleapis.com cloudbuild.googleapis.com --project demo-project',
      '+ gcloud artifacts repositories describe anomaly-serve --location europe-west1 --project demo-project',
      '+ gcloud artifacts repositories create anomaly-serve --repository-format docker --location europe-west1 --project demo-project',
      '+ gcloud container clusters describe anomaly-serve --region europe-west1 --project demo-project',
      '+ gcloud container clusters create anomaly-serve --region europe-west1 --project demo-project --machine-type e2-standard-2 --num-nodes 1 ' +
        '--enable-autoscaling --min-nodes 1 --max-nodes 3 --enable-vertical-pod-autoscaling --enable-managed-prometheus --enable-dataplane-v2 ' +
        '--workload-pool demo-project.svc.id.goog --release-channel regular --gateway-api standard',
      '+ gcloud projects describe demo-project --format value\\(projectNumber\\)',
      '+ gcloud projects add-iam-policy-binding demo-project --member serviceAccount:PROJECT_NUMBER@cloudbuild.gserviceaccount.com --role roles/container.developer --condition None',
    ]);
    expect(stdout).toMatch(/gcloud builds submit --project demo-project --config cloudbuild\.yaml/);
  });

  it('passes the options on', async () => {
    const { stdout } = await run(
      ['--dry-run', '--project', 'p', '--region', 'us-central1', '--cluster', 'ecg', '--repository', 'ml', '--machine-type', 'n2-standard-4', '--min-nodes', '2', '--max-nodes', '8'],
    );
    const create = commands(stdout).find((c) => c.includes('clusters create'))!;
    expect(create).toMatch(/clusters create ecg --region us-central1 --project p --machine-type n2-standard-4 --num-nodes 2 --enable-autoscaling --min-nodes 2 --max-nodes 8/);
    expect(commands(stdout).find((c) => c.includes('repositories create'))).toMatch(/repositories create ml .* --location us-central1/);
  });

  it.each([
    ['load', 'custom-metrics-stackdriver-adapter/deploy/production/adapter_new_resource_model.yaml', 'ns/custom-metrics/sa/custom-metrics-stackdriver-adapter'],
    ['keda', 'kedacore/keda/releases/download/v2.16.1/keda-2.16.1.yaml', 'ns/keda/sa/keda-operator'],
  ])('--autoscaling %s: installs what reads Managed Prometheus for the HPA, and lets it read by Workload Identity', async (mode, manifest, subject) => {
    const { code, stdout } = await run(['--dry-run', '--project', 'p', '--autoscaling', mode]);
    expect(code).toBe(0);
    const lines = stdout.split('\n').filter((l) => l.startsWith('+ '));
    expect(lines.slice(-3)).toEqual([
      '+ gcloud container clusters get-credentials anomaly-serve --region europe-west1 --project p',
      `+ kubectl apply --server-side -f https://${manifest.startsWith('kedacore') ? 'github.com/' : 'raw.githubusercontent.com/GoogleCloudPlatform/k8s-stackdriver/master/'}${manifest}`,
      `+ gcloud projects add-iam-policy-binding p --role roles/monitoring.viewer --condition None --member principal://iam.googleapis.com/projects/PROJECT_NUMBER/locations/global/workloadIdentityPools/p.svc.id.goog/subject/${subject}`,
    ]);
  });

  it('--domain: the certificate of the HTTPS front door in the map the chart names, the DNS record to create, and _DOMAIN for the build', async () => {
    const { code, stdout } = await run(['--dry-run', '--project', 'p', '--domain', 'anomalies.example.com']);
    expect(code).toBe(0);
    const certificates = commands(stdout).filter((c) => /certificate-manager|certificatemanager/.test(c));
    expect(certificates.filter((c) => / create /.test(c) || / enable /.test(c))).toEqual([
      '+ gcloud services enable certificatemanager.googleapis.com --project p',
      '+ gcloud certificate-manager dns-authorizations create anomaly-serve --domain anomalies.example.com --project p',
      '+ gcloud certificate-manager certificates create anomaly-serve --domains anomalies.example.com --dns-authorizations anomaly-serve --project p',
      `+ gcloud certificate-manager maps create ${CERTIFICATE_MAP} --project p`,
      `+ gcloud certificate-manager maps entries create anomaly-serve --map ${CERTIFICATE_MAP} --certificates anomaly-serve --hostname anomalies.example.com --project p`,
    ]);
    expect(stdout).toMatch(/Create this DNS record at your DNS provider/);
    expect(stdout).toMatch(/_NAMESPACE=anomaly-serve,_DOMAIN=anomalies\.example\.com,SHORT_SHA=/);
  });

  it('--autoscaling cpu (the default) installs nothing more', async () => {
    const { stdout } = await run(['--dry-run', '--project', 'p', '--autoscaling', 'cpu']);
    expect(stdout).not.toMatch(/kubectl|monitoring\.viewer/);
  });

  it.each([
    [['--dry-run', '--project', 'p', '--autoscaling', 'memory'], /--autoscaling must be cpu, load or keda, got 'memory'/],
    [['--dry-run', '--project'], /--project needs a value/],
    [['--dry-run', '--project', 'p', '--zone', 'x'], /unknown option: --zone/],
    [['--dry-run', '--project', 'p', '--min-nodes', 'two'], /--min-nodes must be a whole number, got 'two'/],
    [['--dry-run', '--project', 'p', '--max-nodes', '0'], /--max-nodes must be a whole number of at least 1/],
    [['--dry-run', '--project', 'p', '--min-nodes', '5', '--max-nodes', '2'], /--min-nodes \(5\) must not exceed --max-nodes \(2\)/],
    [['--dry-run', '--project', 'p', '--cluster', 'My_Cluster'], /--cluster must be lower-case letters/],
    [['--dry-run', '--project', 'p', '--region', 'europe'], /--region must be a region such as europe-west1/],
    [['--dry-run', '--project', 'p', '--domain', 'https://anomalies.example.com'], /--domain must be a host name such as api\.example\.com/],
    [['--dry-run'], /--project is needed: gcloud has no configured project/],
  ])('%j: usage and exit code 2', async (args, message) => {
    const { code, stderr } = await run(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr).toMatch(/Usage: scripts\/create-cluster\.sh/);
  });
});

describe('scripts/create-cluster.sh, run twice', () => {
  it('creates the repository and the cluster once, and leaves them alone the second time', async () => {
    const env = fakeGcloud.env;
    const first = await run(['--project', 'p'], env);
    const second = await run(['--project', 'p'], env);
    expect([first.code, second.code]).toEqual([0, 0]);
    const calls = await fakeGcloud.calls();
    expect(calls.filter((c) => / create /.test(c))).toEqual([
      'artifacts repositories create anomaly-serve --repository-format docker --location europe-west1 --project p',
      expect.stringMatching(/^container clusters create anomaly-serve /),
    ]);
    expect(second.stdout).toMatch(/Artifact Registry repository anomaly-serve exists/);
    expect(second.stdout).toMatch(/GKE cluster anomaly-serve exists/);
    expect(calls.filter((c) => c.startsWith('projects add-iam-policy-binding'))).toEqual([
      'projects add-iam-policy-binding p --member serviceAccount:123456@cloudbuild.gserviceaccount.com --role roles/container.developer --condition None',
      'projects add-iam-policy-binding p --member serviceAccount:123456@cloudbuild.gserviceaccount.com --role roles/container.developer --condition None',
    ]);
  });
});

describe('scripts/create-cluster.sh --domain, run twice', () => {
  it('makes the certificate once, and the second time updates the existing cluster to serve the Gateway API', async () => {
    const env = fakeGcloud.env;
    const before = (await fakeGcloud.calls()).length;
    const runs = [await run(['--project', 'q', '--cluster', 'ecg', '--domain', 'anomalies.example.com'], env), await run(['--project', 'q', '--cluster', 'ecg', '--domain', 'anomalies.example.com'], env)];
    expect(runs.map((r) => r.code)).toEqual([0, 0]);
    const calls = (await fakeGcloud.calls()).slice(before);
    expect(calls.filter((c) => c.startsWith('certificate-manager') && / create /.test(c))).toHaveLength(4);
    expect(calls.filter((c) => c.startsWith('container clusters update'))).toEqual(['container clusters update ecg --region europe-west1 --project q --gateway-api standard']);
  });
});
