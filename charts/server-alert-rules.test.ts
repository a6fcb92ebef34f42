import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Chart, Testing } from 'cdk8s';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { METRIC } from '../app/metrics.ts';
import { manifestProblems, type Manifest } from '../test/manifest-validation.ts';
import { describeWithCommand } from '../test/describe-if.ts';
import { sleep, startPrometheus, type RunningPrometheus } from '../test/prometheus.ts';
import { spawnServer, type ServerProcess } from '../lib/server-process.ts';
import { bundledExample } from '../test/bundled-model.ts';
import { post } from '../test/http-post.ts';
import { AnomalyDetector, type AnomalyDetectorProps } from './anomaly-detector.ts';
import type { AlertingRule } from './server-alert-rules.ts';

const run = promisify(execFile);

/** The rules objects an AnomalyDetector synthesizes, as the API server would get them. */
function rulesOf(props: Partial<AnomalyDetectorProps> = {}, namespace?: string): Manifest[] {
  const chart = new Chart(Testing.app(), 'test', { namespace });
  new AnomalyDetector(chart, 'AnomalyDetector', { image: 'anomaly-serve:test', ...props });
  return (Testing.synth(chart) as Manifest[]).filter((m) => m.kind === 'Rules' || m.kind === 'PrometheusRule');
}

type RuleGroups = { groups: { name: string; interval: string; rules: AlertingRule[] }[] };
const groupsOf = (manifest: Manifest) => (manifest as unknown as { spec: RuleGroups }).spec;

describe('ServerAlertRules', () => {
  it('ships Managed Prometheus Rules by default, valid against the CRD, one alert of each kind', () => {
    const [rules, ...more] = rulesOf();
    expect(more).toEqual([]);
    expect(rules).toMatchObject({ apiVersion: 'monitoring.googleapis.com/v1', kind: 'Rules', metadata: { name: 'anomaly-serve' } });
    expect(groupsOf(rules!).groups[0]!.rules.map((r) => r.alert)).toEqual([
      'AnomalyServeAnomalyRateHigh',
      'AnomalyServeScoreDrift',
      'AnomalyServeServerErrors',
      'AnomalyServeLatencyHigh',
      'AnomalyServeApiKeysReloadFailed',
    ]);
    expect(manifestProblems([rules!])).toEqual([]);
  });

  it('ships a PrometheusRule with the Prometheus selector\'s labels for the Prometheus Operator, on the ServiceMonitor\'s job', () => {
    const [rule] = rulesOf({ monitoring: 'prometheus-operator', serviceMonitorLabels: { release: 'prom' } }, 'ml');
    expect(rule).toMatchObject({ apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule', metadata: { labels: { release: 'prom' } } });
    expect(groupsOf(rule!).groups[0]!.rules[0]!.expr).toContain(`${METRIC.anomalies}{job="anomaly-serve-metrics",namespace="ml"}`);
    expect(manifestProblems([rule!])).toEqual([]);
  });

  it('tunes each alert, turns one off, or all of them', () => {
    const [rules] = rulesOf({
      alerts: { interval: '10s', anomalyRate: { factor: 5, for: '30m', severity: 'page' }, drift: { pValue: 0.01, minimumScores: 500 }, serverErrors: false, latency: { p99Seconds: 0.25 } },
    });
    const { groups } = groupsOf(rules!);
    expect(groups[0]!.interval).toBe('10s');
    const byName = Object.fromEntries(groups[0]!.rules.map((r) => [r.alert, r]));
    expect(byName.AnomalyServeServerErrors).toBeUndefined();
    expect(byName.AnomalyServeAnomalyRateHigh).toMatchObject({ for: '30m', labels: { severity: 'page' } });
    expect(byName.AnomalyServeAnomalyRateHigh!.expr).toMatch(/> 5 \* max\(/);
    expect(byName.AnomalyServeScoreDrift!.expr).toMatch(/>= 500\) < 0\.01$/);
    expect(byName.AnomalyServeLatencyHigh!.expr).toMatch(/> 0\.25$/);
    expect(rulesOf({ alerts: false })).toEqual([]);
    expect(rulesOf({ monitoring: 'none' })).toEqual([]);
  });

  it.each([
    [{ monitoring: 'none' as const, alerts: {} }, /ServerMonitoring: alerts needs monitoring gmp or prometheus-operator/],
    [{ alerts: { drift: { for: 'a while' } } }, /ServerAlertRules: alerts\.drift\.for \("a while"\) must be a Prometheus duration/],
    [{ alerts: { anomalyRate: { factor: 0.5 } } }, /alerts\.anomalyRate\.factor \(0\.5\) is out of range/],
    [{ alerts: { interval: '30' } }, /alerts\.interval \("30"\) must be a Prometheus duration/],
    [{ alerts: { anomalyRate: false, drift: false, serverErrors: false, latency: false, apiKeysReload: false } }, /set alerts to false instead/],
  ])('refuses %j, naming the prop', (props, message) => {
    expect(() => rulesOf(props as Partial<AnomalyDetectorProps>)).toThrow(message);
  });
});

/**
 * promtool's unit tests of the synthesized rules: each alert fires on series that should wake
 * someone, with its labels and its annotations as rendered, and stays quiet on series beside them
 * that should not.
 */
describeWithCommand('promtool', 'prometheus', 'the synthesized alert rules under promtool', () => {
  let scratch: string;
  let rules: AlertingRule[];
  const rulesFile = () => path.join(scratch, 'rules.yml');

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'promtool-'));
    const [manifest] = rulesOf({}, 'ml');
    const spec = groupsOf(manifest!);
    rules = spec.groups[0]!.rules;
    await writeFile(rulesFile(), stringify(spec));
  });
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  /** An alert as promtool expects it: the rule's labels, and its annotations rendered with `value`. */
  const firing = (alert: string, value?: string) => {
    const rule = rules.find((r) => r.alert === alert)!;
    const render = (text: string) => text.replace(/\{\{ \$value[^}]*\}\}/g, value ?? '');
    return { exp_labels: rule.labels, exp_annotations: { summary: rule.annotations.summary, description: render(rule.annotations.description) } };
  };
  const series = (name: string, labels: string, values: string) => ({ series: `${name}{job="anomaly-serve",namespace="ml"${labels}}`, values });

  it('passes promtool check rules', async () => {
    const { stdout } = await run('promtool', ['check', 'rules', rulesFile()]);
    expect(stdout).toMatch(/SUCCESS: 5 rules found/);
  });

  it('fires each alert on the series that should, and on none of the series beside them that should not', async () => {
    const tests = [
      {
        name: 'anomaly rate: 20% against an expected 2% fires; 4% does not',
        interval: '1m',
        input_series: [
          series(METRIC.instancesScored, '', '0+600x40'),
          series(METRIC.anomalies, '', '0+120x40'),
          series(METRIC.expectedAnomalyRate, '', '0.02x40'),
          series(METRIC.instancesScored, ',pod="quiet"', '0+0x40'),
        ],
        alert_rule_test: [
          { eval_time: '10m', alertname: 'AnomalyServeAnomalyRateHigh', exp_alerts: [] },
          { eval_time: '30m', alertname: 'AnomalyServeAnomalyRateHigh', exp_alerts: [firing('AnomalyServeAnomalyRateHigh', '20%')] },
        ],
      },
      {
        name: 'anomaly rate below the factor',
        interval: '1m',
        input_series: [series(METRIC.instancesScored, '', '0+600x40'), series(METRIC.anomalies, '', '0+24x40'), series(METRIC.expectedAnomalyRate, '', '0.02x40')],
        alert_rule_test: [{ eval_time: '30m', alertname: 'AnomalyServeAnomalyRateHigh', exp_alerts: [] }],
      },
      {
        name: 'drift: every pod with enough scores below the level fires; a pod of few scores is left out',
        interval: '1m',
        input_series: [
          series(METRIC.driftKsPValue, ',pod="a"', '0.0001x40'),
          series(METRIC.driftWindowScores, ',pod="a"', '1000x40'),
          series(METRIC.driftKsPValue, ',pod="b"', '0.5x40'),
          series(METRIC.driftWindowScores, ',pod="b"', '50x40'),
        ],
        alert_rule_test: [
          { eval_time: '5m', alertname: 'AnomalyServeScoreDrift', exp_alerts: [] },
          { eval_time: '20m', alertname: 'AnomalyServeScoreDrift', exp_alerts: [firing('AnomalyServeScoreDrift', '0.0001')] },
        ],
      },
      {
        name: 'drift on a pod that has not seen enough scores, or one pod of two that does not drift',
        interval: '1m',
        input_series: [
          series(METRIC.driftKsPValue, ',pod="a"', '0.0001x40'),
          series(METRIC.driftWindowScores, ',pod="a"', '100x40'),
          series(METRIC.driftKsPValue, ',pod="b"', '0.0001x40'),
          series(METRIC.driftWindowScores, ',pod="c"', '1000x40'),
          series(METRIC.driftKsPValue, ',pod="c"', '0.3x40'),
        ],
        alert_rule_test: [{ eval_time: '30m', alertname: 'AnomalyServeScoreDrift', exp_alerts: [] }],
      },
      {
        name: 'server errors: 10% fires, and requests of another job do not count',
        interval: '1m',
        input_series: [
          series(METRIC.httpRequests, ',status="200"', '0+540x20'),
          series(METRIC.httpRequests, ',status="500"', '0+60x20'),
          { series: `${METRIC.httpRequests}{job="other",namespace="ml",status="500"}`, values: '0+6000x20' },
        ],
        alert_rule_test: [{ eval_time: '15m', alertname: 'AnomalyServeServerErrors', exp_alerts: [firing('AnomalyServeServerErrors', '10%')] }],
      },
      {
        name: 'server errors: 2% does not',
        interval: '1m',
        input_series: [series(METRIC.httpRequests, ',status="200"', '0+588x20'), series(METRIC.httpRequests, ',status="503"', '0+12x20')],
        alert_rule_test: [{ eval_time: '15m', alertname: 'AnomalyServeServerErrors', exp_alerts: [] }],
      },
      {
        name: 'latency: every inference between 0.5 and 1 s fires; GETs do not count',
        interval: '1m',
        input_series: [
          ...['0.5', '1', '+Inf'].map((le) => series(`${METRIC.httpDuration}_bucket`, `,method="POST",le="${le}"`, le === '0.5' ? '0x30' : '0+100x30')),
          ...['0.5', '1', '+Inf'].map((le) => series(`${METRIC.httpDuration}_bucket`, `,method="GET",le="${le}"`, '0+100000x30')),
        ],
        alert_rule_test: [{ eval_time: '20m', alertname: 'AnomalyServeLatencyHigh', exp_alerts: [firing('AnomalyServeLatencyHigh', '995ms')] }],
      },
      {
        name: 'latency: fast inference does not',
        interval: '1m',
        input_series: ['0.5', '1', '+Inf'].map((le) => series(`${METRIC.httpDuration}_bucket`, `,method="POST",le="${le}"`, '0+100x30')),
        alert_rule_test: [{ eval_time: '20m', alertname: 'AnomalyServeLatencyHigh', exp_alerts: [] }],
      },
      {
        name: 'API keys: a failed reload fires at once, and clears 10 minutes later',
        interval: '1m',
        input_series: [series(METRIC.apiKeysReloadFailures, '', '0x5 1x30')],
        alert_rule_test: [
          { eval_time: '4m', alertname: 'AnomalyServeApiKeysReloadFailed', exp_alerts: [] },
          { eval_time: '7m', alertname: 'AnomalyServeApiKeysReloadFailed', exp_alerts: [firing('AnomalyServeApiKeysReloadFailed')] },
          { eval_time: '25m', alertname: 'AnomalyServeApiKeysReloadFailed', exp_alerts: [] },
        ],
      },
    ];
    const testFile = path.join(scratch, 'rules.test.yml');
    await writeFile(testFile, stringify({ rule_files: [rulesFile()], evaluation_interval: '1m', tests }));
    const result = await run('promtool', ['test', 'rules', testFile]).catch((error: { stdout: string; stderr: string }) => error);
    expect(`${result.stdout}${result.stderr}`).toMatch(/SUCCESS/);
  });
});

describeWithCommand('prometheus', 'prometheus', 'the real Prometheus evaluating the synthesized rules on a real server', () => {
  let server: ServerProcess;
  let prometheus: RunningPrometheus;

  beforeAll(async () => {
    server = await spawnServer();
    // The rules as synthesized, evaluated every second, pending after a minute instead of fifteen.
    const [manifest] = rulesOf({ alerts: { interval: '1s', anomalyRate: { for: '1m' }, drift: { for: '1m' } } });
    prometheus = await startPrometheus(new URL(server.metricsUrl).host, { job: 'anomaly-serve', rules: groupsOf(manifest!) });
  }, 60_000);
  afterAll(async () => {
    await prometheus?.stop();
    await server?.stop();
  });

  const activeAlerts = async () => {
    const body = (await (await fetch(`${prometheus.url}/api/v1/alerts`)).json()) as { data: { alerts: { labels: { alertname: string }; state: string }[] } };
    return Object.fromEntries(body.data.alerts.map((a) => [a.labels.alertname, a.state]));
  };

  it('raises the anomaly-rate and drift alerts once the server is fed anomalous rows, and nothing else', async () => {
    // Before any traffic: scraped, evaluated, and quiet.
    for (let i = 0; i < 50 && (await prometheus.query(`${METRIC.expectedAnomalyRate}{job="anomaly-serve"}`)) === undefined; i++) await sleep(200);
    expect(await activeAlerts()).toEqual({});
    const anomalous = bundledExample('anomalous')!;
    for (let i = 0; i < 5; i++) {
      const response = await post(`${server.url}/predict`, JSON.stringify({ instances: Array(64).fill(anomalous) }));
      expect(response.status).toBe(200);
    }
    let alerts: Record<string, string> = {};
    for (let i = 0; i < 150 && Object.keys(alerts).length < 2; i++) {
      await sleep(200);
      alerts = await activeAlerts();
    }
    expect(alerts).toEqual({ AnomalyServeAnomalyRateHigh: expect.stringMatching(/pending|firing/), AnomalyServeScoreDrift: expect.stringMatching(/pending|firing/) });
    expect(await prometheus.query(`${METRIC.driftWindowAnomalyRate}{job="anomaly-serve"}`)).toBe(1);
    expect(await prometheus.query(`${METRIC.driftKsPValue}{job="anomaly-serve"}`)).toBeLessThan(1e-6);
  }, 60_000);
});
