import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import { Ajv, type ValidateFunction } from 'ajv';
import { ConfigMap, Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { parseAllDocuments } from 'yaml';

/**
 * Offline checks of synthesized manifests, standing in for an API server: core kinds against the
 * Kubernetes schemas, custom resources against their CRDs' schemas, and, for both, no field the
 * API does not know (an API server would drop it silently, or reject it).
 */
export type Manifest = { apiVersion: string; kind: string; metadata: { name: string; [key: string]: unknown }; [key: string]: unknown };

interface ModelClass {
  new (data: object): { validate(): void };
}

/** Each core kind: its kubernetes-models class, and its type in the official client's serializer. */
const CORE: Record<string, [ModelClass, string]> = {
  'v1/ConfigMap': [ConfigMap, 'V1ConfigMap'],
  'v1/Namespace': [Namespace, 'V1Namespace'],
  'v1/Service': [Service, 'V1Service'],
  'v1/ServiceAccount': [ServiceAccount, 'V1ServiceAccount'],
  'apps/v1/Deployment': [Deployment, 'V1Deployment'],
  'autoscaling/v2/HorizontalPodAutoscaler': [HorizontalPodAutoscaler, 'V2HorizontalPodAutoscaler'],
  'policy/v1/PodDisruptionBudget': [PodDisruptionBudget, 'V1PodDisruptionBudget'],
};

/** The CRDs in ../shared/schemas (reference data, not copied into this repository). */
const SCHEMAS = fileURLToPath(new URL('../../shared/schemas/', import.meta.url));
const CRDS: Record<string, [file: string, crd: string]> = {
  'autoscaling.k8s.io/v1/VerticalPodAutoscaler': ['vpa-crd.yaml', 'verticalpodautoscalers.autoscaling.k8s.io'],
  'monitoring.googleapis.com/v1/PodMonitoring': ['podmonitoring-crd.yaml', 'podmonitorings.monitoring.googleapis.com'],
  'monitoring.coreos.com/v1/ServiceMonitor': ['servicemonitor-crd.yaml', 'servicemonitors.monitoring.coreos.com'],
};

type Schema = { [key: string]: unknown; properties?: Record<string, Schema> };

/** Closes every object schema that lists its properties, so that an unknown field fails. */
function closed(schema: Schema): Schema {
  if (typeof schema !== 'object' || schema === null) return schema;
  const copy: Schema = Array.isArray(schema) ? (schema.map(closed) as unknown as Schema) : {};
  if (Array.isArray(schema)) return copy;
  for (const [key, value] of Object.entries(schema)) copy[key] = typeof value === 'object' && value !== null ? closed(value as Schema) : value;
  if (schema.properties && schema.additionalProperties === undefined && !schema['x-kubernetes-preserve-unknown-fields']) {
    copy.additionalProperties = false;
  }
  return copy;
}

const ajv = new Ajv({
  strict: false, // the CRDs carry x-kubernetes-* keywords
  allErrors: true,
  formats: { int32: true, int64: true, 'date-time': true, duration: /^(\d+(ms|s|m|h|d|w|y))+$/ },
});
const crdValidators = new Map<string, ValidateFunction>();

function crdValidator(key: string): ValidateFunction {
  const cached = crdValidators.get(key);
  if (cached) return cached;
  const [file, crdName] = CRDS[key]!;
  const version = key.split('/').at(-2)!;
  const crd = parseAllDocuments(readFileSync(SCHEMAS + file, 'utf8'))
    .map((document) => document.toJS() as { metadata: { name: string }; spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] } })
    .find((document) => document?.metadata?.name === crdName);
  const schema = crd?.spec.versions.find((v) => v.name === version)?.schema.openAPIV3Schema;
  if (!schema) throw new Error(`${file} has no ${crdName} ${version} schema`);
  const validator = ajv.compile(closed(schema));
  crdValidators.set(key, validator);
  return validator;
}

/** Paths that `actual` has and `known` (the object as the API's types read it) lacks. */
function unknownFields(actual: unknown, known: unknown, path = ''): string[] {
  if (typeof actual !== 'object' || actual === null) return [];
  if (typeof known !== 'object' || known === null) return [path || '(root)'];
  return Object.entries(actual).flatMap(([key, value]) => {
    const here = Array.isArray(actual) ? `${path}[${key}]` : `${path}.${key}`;
    if (!(key in known)) return [here];
    return unknownFields(value, (known as Record<string, unknown>)[key], here);
  });
}

/** Every problem with one manifest object, each naming its kind, name and the place. */
export function manifestProblems(manifest: Manifest): string[] {
  const key = `${manifest.apiVersion}/${manifest.kind}`;
  const where = `${manifest.kind} ${manifest.metadata?.name}`;
  const core = CORE[key];
  if (core) {
    const [Model, type] = core;
    const problems: string[] = [];
    try {
      new Model(manifest).validate();
    } catch (error) {
      problems.push(`${where}: ${(error as Error).message}`);
    }
    const known = ObjectSerializer.serialize(ObjectSerializer.deserialize(manifest, type, ''), type, '');
    problems.push(...unknownFields(manifest, known).map((path) => `${where}: unknown field ${path}`));
    return problems;
  }
  if (CRDS[key]) {
    const validate = crdValidator(key);
    if (validate(manifest)) return [];
    return (validate.errors ?? []).map(
      (e) => `${where}: ${e.instancePath || '(root)'} ${e.message}${e.params && 'additionalProperty' in e.params ? `: ${e.params.additionalProperty}` : ''}`,
    );
  }
  return [`${where}: no schema for ${key}`];
}
