import { ApiObject, type ApiObjectMetadata } from 'cdk8s';
import { Construct } from 'constructs';
import { METRIC } from '../app/metrics.ts';
import { PropsError } from './props-error.ts';

/** What every alert takes. */
export interface AlertRuleOptions {
  /** How long the condition must hold before the alert fires (a Prometheus duration). @default per alert */
  readonly for?: string;
  /** The `severity` label, for Alertmanager's routing. @default 'warning' */
  readonly severity?: string;
}

export interface AnomalyRateAlertOptions extends AlertRuleOptions {
  /** Fires when the anomaly rate over 10 minutes is more than this many times the calibration's expected rate. @default 3 */
  readonly factor?: number;
}

export interface DriftAlertOptions extends AlertRuleOptions {
  /** Fires when the drift test's p-value is below this on every pod with enough scores. @default 0.001 */
  readonly pValue?: number;
  /** Pods with fewer scores in their drift window are left out: a test of a few scores says little. @default 200 */
  readonly minimumScores?: number;
}

export interface ServerErrorsAlertOptions extends AlertRuleOptions {
  /** Fires when more than this share of answers over 5 minutes are 5xx. @default 0.05 */
  readonly ratio?: number;
}

export interface LatencyAlertOptions extends AlertRuleOptions {
  /** Fires when the 99th percentile of inference requests' latency over 5 minutes is above this. @default 0.5 */
  readonly p99Seconds?: number;
}

/** The alert rules, each tuned or turned off (false). */
export interface ServerAlertsOptions {
  /** How often the rules are evaluated (a Prometheus duration). @default '30s' */
  readonly interval?: string;
  /** More anomalies than the calibration expects: an incident in what is measured, or drift. @default { factor: 3, for: '15m' } */
  readonly anomalyRate?: AnomalyRateAlertOptions | false;
  /** Recent scores no longer distributed like the calibration's (Kolmogorov-Smirnov). @default { pValue: 0.001, minimumScores: 200, for: '15m' } */
  readonly drift?: DriftAlertOptions | false;
  /** A share of 5xx answers. @default { ratio: 0.05, for: '5m', severity: 'critical' } */
  readonly serverErrors?: ServerErrorsAlertOptions | false;
  /** Slow inference. @default { p99Seconds: 0.5, for: '10m' } */
  readonly latency?: LatencyAlertOptions | false;
  /** A change of the API keys file that could not be loaded (the old keys stay in force). @default { for: '0m' } */
  readonly apiKeysReload?: AlertRuleOptions | false;
}

/** A Prometheus alerting rule, as both Rules and PrometheusRule take it. */
export interface AlertingRule {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  readonly labels: Record<string, string>;
  readonly annotations: { readonly summary: string; readonly description: string };
}

const DURATION = /^(\d+(ms|s|m|h|d|w|y))+$/;

function checked<T extends AlertRuleOptions>(alert: string, options: T, numbers: Partial<Record<keyof T, (n: number) => boolean>>): T {
  if (options.for !== undefined && !DURATION.test(options.for)) throw new PropsError('ServerAlertRules', `alerts.${alert}.for (${JSON.stringify(options.for)}) must be a Prometheus duration such as 15m`);
  for (const [key, valid] of Object.entries(numbers) as [keyof T & string, (n: number) => boolean][]) {
    const value = options[key];
    if (value !== undefined && !(typeof value === 'number' && valid(value))) throw new PropsError('ServerAlertRules', `alerts.${alert}.${key} (${String(value)}) is out of range`);
  }
  return options;
}

/**
 * The alerting rules for the series that `selector` picks (a PromQL label matcher of the server's
 * pods), from the options: the one definition that both kinds of rules object, the tests and the
 * docs read.
 */
export function alertingRules(selector: string, alerts: ServerAlertsOptions = {}): AlertingRule[] {
  const rules: AlertingRule[] = [];
  const rule = (alert: string, options: AlertRuleOptions, defaults: { for: string; severity?: string }, expr: string, summary: string, description: string) =>
    rules.push({
      alert,
      expr,
      for: options.for ?? defaults.for,
      labels: { severity: options.severity ?? defaults.severity ?? 'warning' },
      annotations: { summary, description },
    });
  const on = (s: string) => `{${[selector, s].filter(Boolean).join(',')}}`;

  if (alerts.anomalyRate !== false) {
    const options = checked('anomalyRate', alerts.anomalyRate ?? {}, { factor: (n) => n > 1 });
    const factor = options.factor ?? 3;
    rule(
      'AnomalyServeAnomalyRateHigh',
      options,
      { for: '15m' },
      `sum(rate(${METRIC.anomalies}${on('')}[10m])) / sum(rate(${METRIC.instancesScored}${on('')}[10m])) > ${factor} * max(${METRIC.expectedAnomalyRate}${on('')})`,
      'More anomalies than the calibration expects',
      `{{ $value | humanizePercentage }} of the rows scored in the last 10 minutes are anomalous, over ${factor} times the rate normal traffic gives. ` +
        'Either something is wrong in what is measured, or the data has drifted from what the model was calibrated on: see the drift gauges.',
    );
  }
  if (alerts.drift !== false) {
    const options = checked('drift', alerts.drift ?? {}, { pValue: (n) => n > 0 && n < 1, minimumScores: (n) => Number.isInteger(n) && n > 0 });
    const level = options.pValue ?? 0.001;
    rule(
      'AnomalyServeScoreDrift',
      options,
      { for: '15m' },
      `max(${METRIC.driftKsPValue}${on('')} and ${METRIC.driftWindowScores}${on('')} >= ${options.minimumScores ?? 200}) < ${level}`,
      'Recent scores are not distributed like the calibration\'s',
      `The Kolmogorov-Smirnov test of every pod's recent scores against the calibration gives p < ${level} (at most {{ $value }}): ` +
        'the inputs have changed. Compare the score histogram with the calibration; re-train or re-calibrate if the change is the new normal.',
    );
  }
  if (alerts.serverErrors !== false) {
    const options = checked('serverErrors', alerts.serverErrors ?? {}, { ratio: (n) => n > 0 && n < 1 });
    const ratio = options.ratio ?? 0.05;
    rule(
      'AnomalyServeServerErrors',
      options,
      { for: '5m', severity: 'critical' },
      `sum(rate(${METRIC.httpRequests}${on('status=~"5.."')}[5m])) / sum(rate(${METRIC.httpRequests}${on('')}[5m])) > ${ratio}`,
      'Many requests fail on the server\'s side',
      `{{ $value | humanizePercentage }} of the answers over 5 minutes are 5xx (over ${ratio * 100}%): read the server's logs (503s with a reason are shed load).`,
    );
  }
  if (alerts.latency !== false) {
    const options = checked('latency', alerts.latency ?? {}, { p99Seconds: (n) => n > 0 });
    const seconds = options.p99Seconds ?? 0.5;
    rule(
      'AnomalyServeLatencyHigh',
      options,
      { for: '10m' },
      `histogram_quantile(0.99, sum by (le) (rate(${METRIC.httpDuration}_bucket${on('method="POST"')}[5m]))) > ${seconds}`,
      'Inference is slow',
      `The 99th percentile of inference requests' latency is {{ $value | humanizeDuration }}, above ${seconds} s: the pods are past their capacity, or the autoscaler is at its maximum.`,
    );
  }
  if (alerts.apiKeysReload !== false) {
    const options = checked('apiKeysReload', alerts.apiKeysReload ?? {}, {});
    rule(
      'AnomalyServeApiKeysReloadFailed',
      options,
      { for: '0m' },
      `sum(increase(${METRIC.apiKeysReloadFailures}${on('')}[10m])) > 0`,
      'A change of the API keys could not be loaded',
      'The API keys file changed and could not be read: the keys in force before are still the ones that work, so a key just added or revoked has not taken effect. Read the server\'s logs.',
    );
  }
  return rules;
}

export interface ServerAlertRulesProps {
  readonly metadata: ApiObjectMetadata;
  /** Which rules object: Managed Prometheus' Rules, or the Prometheus Operator's PrometheusRule. */
  readonly monitoring: 'gmp' | 'prometheus-operator';
  /** The PromQL label matcher of the server's series. */
  readonly selector: string;
  /** The rules' options. @default every alert at its defaults */
  readonly alerts?: ServerAlertsOptions;
}

/**
 * The server's alerting rules: a Rules object (`monitoring.googleapis.com/v1`) that Google Cloud
 * Managed Service for Prometheus evaluates on the namespace's series, or a PrometheusRule
 * (`monitoring.coreos.com/v1`) for the Prometheus Operator.
 */
export class ServerAlertRules extends Construct {
  readonly apiObject: ApiObject;
  readonly rules: readonly AlertingRule[];

  constructor(scope: Construct, id: string, props: ServerAlertRulesProps) {
    super(scope, id);
    this.rules = alertingRules(props.selector, props.alerts);
    if (this.rules.length === 0) throw new PropsError('ServerAlertRules', 'alerts turns every alert off: set alerts to false instead, for no rules object');
    const interval = props.alerts?.interval ?? '30s';
    if (!DURATION.test(interval)) throw new PropsError('ServerAlertRules', `alerts.interval (${JSON.stringify(interval)}) must be a Prometheus duration such as 30s`);
    const [apiVersion, kind] = props.monitoring === 'gmp' ? ['monitoring.googleapis.com/v1', 'Rules'] : ['monitoring.coreos.com/v1', 'PrometheusRule'];
    this.apiObject = new ApiObject(this, 'Resource', {
      apiVersion,
      kind,
      metadata: props.metadata,
      spec: { groups: [{ name: 'anomaly-serve', interval, rules: this.rules }] },
    });
  }
}
