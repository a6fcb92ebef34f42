import { Chart, Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { manifestProblems, type Manifest } from '../test/manifest-validation.ts';
import { parseQuantity } from './k8s-values.ts';
import { VerticalPodAutoscaler, type VerticalPodAutoscalerProps } from './vertical-pod-autoscaler.ts';

const target = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' };

function synth(props: Partial<VerticalPodAutoscalerProps> = {}) {
  const chart = new Chart(Testing.app(), 'test');
  const vpa = new VerticalPodAutoscaler(chart, 'Vpa', { metadata: { name: 'web' }, target, ...props });
  return { vpa, manifest: Testing.synth(chart)[0] as Manifest & { spec: Record<string, unknown> } };
}

describe('VerticalPodAutoscaler', () => {
  it('recommends only by default, for every container', () => {
    const { vpa, manifest } = synth();
    expect(manifest).toMatchObject({ apiVersion: 'autoscaling.k8s.io/v1', kind: 'VerticalPodAutoscaler', spec: { targetRef: target, updatePolicy: { updateMode: 'Off' } } });
    expect(manifest.spec).not.toHaveProperty('resourcePolicy');
    expect(manifestProblems([manifest])).toEqual([]);
    expect(vpa.acts('cpu')).toBe(false);
  });

  it.each(['Off', 'Initial', 'Recreate', 'InPlaceOrRecreate'] as const)('takes updateMode %s, valid against the CRD', (updateMode) => {
    const { manifest } = synth({ updateMode });
    expect((manifest.spec.updatePolicy as { updateMode: string }).updateMode).toBe(updateMode);
    expect(manifestProblems([manifest])).toEqual([]);
  });

  it('writes container policies with bounds and controlled resources, and knows what it acts on', () => {
    const { vpa, manifest } = synth({
      updateMode: 'Recreate',
      containerPolicies: [
        { containerName: 'server', controlledResources: ['memory'], controlledValues: 'RequestsOnly', minAllowed: { memory: '128Mi' }, maxAllowed: { memory: '2Gi' } },
        { containerName: 'sidecar', mode: 'Off' },
      ],
    });
    expect(manifestProblems([manifest])).toEqual([]);
    expect(manifest.spec.resourcePolicy).toEqual({
      containerPolicies: [
        { containerName: 'server', controlledResources: ['memory'], controlledValues: 'RequestsOnly', minAllowed: { memory: '128Mi' }, maxAllowed: { memory: '2Gi' } },
        { containerName: 'sidecar', mode: 'Off' },
      ],
    });
    expect(vpa.acts('memory')).toBe(true);
    expect(vpa.acts('cpu')).toBe(false);
  });

  it('rejects a lower bound above the upper one, naming the props', () => {
    expect(() => synth({ containerPolicies: [{ containerName: '*', minAllowed: { cpu: '2' }, maxAllowed: { cpu: '500m' } }] })).toThrow(
      'containerPolicies[0].minAllowed.cpu (2) is above containerPolicies[0].maxAllowed.cpu (500m)',
    );
  });
});

describe('parseQuantity', () => {
  it('reads Kubernetes quantities', () => {
    expect(parseQuantity('500m')).toBe(0.5);
    expect(parseQuantity('2')).toBe(2);
    expect(parseQuantity('256Mi')).toBe(256 * 2 ** 20);
    expect(parseQuantity('1G')).toBe(1e9);
    expect(() => parseQuantity('lots')).toThrow('"lots" is not a Kubernetes quantity');
  });
});
