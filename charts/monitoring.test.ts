import { Chart, Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { manifestProblems, type Manifest } from '../test/manifest-validation.ts';
import { PodMonitoring } from './pod-monitoring.ts';
import { ServiceMonitor } from './service-monitor.ts';

const synth = (build: (chart: Chart) => void) => {
  const chart = new Chart(Testing.app(), 'test');
  build(chart);
  return Testing.synth(chart) as Manifest[];
};

describe('PodMonitoring', () => {
  it('scrapes the selected pods’ port, valid against the CRD', () => {
    const [manifest] = synth((chart) => new PodMonitoring(chart, 'M', { metadata: { name: 'web' }, matchLabels: { app: 'web' }, endpoints: [{ port: 'http', interval: '15s' }] }));
    expect(manifest).toMatchObject({
      apiVersion: 'monitoring.googleapis.com/v1',
      kind: 'PodMonitoring',
      spec: { selector: { matchLabels: { app: 'web' } }, endpoints: [{ port: 'http', path: '/metrics', interval: '15s' }] },
    });
    expect(manifestProblems([manifest!])).toEqual([]);
  });

  it('rejects an interval that is not a duration (schema) and no endpoints (constructor)', () => {
    const [manifest] = synth((chart) => new PodMonitoring(chart, 'M', { metadata: { name: 'web' }, matchLabels: { app: 'web' }, endpoints: [{ port: 8080, interval: 'often' }] }));
    expect(manifestProblems([manifest!]).join()).toMatch(/interval/);
    expect(() => synth((chart) => new PodMonitoring(chart, 'M', { matchLabels: {}, endpoints: [] }))).toThrow('endpoints must name at least one port to scrape');
  });
});

describe('ServiceMonitor', () => {
  it('scrapes the selected Services’ named port, valid against the CRD', () => {
    const [manifest] = synth(
      (chart) => new ServiceMonitor(chart, 'M', { metadata: { name: 'web', labels: { release: 'prom' } }, matchLabels: { app: 'web' }, endpoints: [{ port: 'http' }] }),
    );
    expect(manifest).toMatchObject({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: { labels: { release: 'prom' } },
      spec: { selector: { matchLabels: { app: 'web' } }, endpoints: [{ port: 'http', path: '/metrics', interval: '30s' }] },
    });
    expect(manifestProblems([manifest!])).toEqual([]);
  });
});
