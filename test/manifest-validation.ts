import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { GCPBackendPolicy } from '@kubernetes-models/gke/networking.gke.io/v1/GCPBackendPolicy';
import { HealthCheckPolicy } from '@kubernetes-models/gke/networking.gke.io/v1/HealthCheckPolicy';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { Ajv, type ValidateFunction } from 'ajv';
import { ConfigMap, Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';

/**
 * Offline checks of synthesized manifests, standing in for an API server. Every kind is checked
 * for its values and for fields the API does not know (which an API server drops or rejects):
 *
 * - a kind with a model on npm (the core kinds: `kubernetes-models`; ServiceMonitor:
 *   `@kubernetes-models/prometheus-operator`; ScaledObject and TriggerAuthentication:
 *   `@kubernetes-models/keda` 0.4, KEDA 2.10's CRDs; its 2.x line, for Node.js 22 and later, needs
 *   kubernetes-models 5) against the model's schema and, since that lets unknown fields through,
 *   as a literal of the model's TypeScript type, whose excess-property check names each unknown
 *   field;
 * - a custom resource without one (VerticalPodAutoscaler, PodMonitoring) against its CRD's schema
 *   in `schemas/`, closed so that an unknown field fails.
 */
export type Manifest = { apiVersion: string; kind: string; metadata: { name: string; [key: string]: unknown }; [key: string]: unknown };

interface ModelClass {
  new (data: never): { validate(): void };
}

/** Each kind with an npm model: the model, and the module and name of its TypeScript type. */
const MODELS: Record<string, [ModelClass, module: string, type: string]> = {
  'v1/ConfigMap': [ConfigMap, 'kubernetes-models/v1/ConfigMap', 'IConfigMap'],
  'v1/Namespace': [Namespace, 'kubernetes-models/v1/Namespace', 'INamespace'],
  'v1/Service': [Service, 'kubernetes-models/v1/Service', 'IService'],
  'v1/ServiceAccount': [ServiceAccount, 'kubernetes-models/v1/ServiceAccount', 'IServiceAccount'],
  'apps/v1/Deployment': [Deployment, 'kubernetes-models/apps/v1/Deployment', 'IDeployment'],
  'autoscaling/v2/HorizontalPodAutoscaler': [HorizontalPodAutoscaler, 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler', 'IHorizontalPodAutoscaler'],
  'policy/v1/PodDisruptionBudget': [PodDisruptionBudget, 'kubernetes-models/policy/v1/PodDisruptionBudget', 'IPodDisruptionBudget'],
  'networking.k8s.io/v1/NetworkPolicy': [NetworkPolicy, 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy', 'INetworkPolicy'],
  'monitoring.coreos.com/v1/ServiceMonitor': [ServiceMonitor, '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor', 'IServiceMonitor'],
  'networking.gke.io/v1/HealthCheckPolicy': [HealthCheckPolicy, '@kubernetes-models/gke/networking.gke.io/v1/HealthCheckPolicy', 'IHealthCheckPolicy'],
  'networking.gke.io/v1/GCPBackendPolicy': [GCPBackendPolicy, '@kubernetes-models/gke/networking.gke.io/v1/GCPBackendPolicy', 'IGCPBackendPolicy'],
  'monitoring.coreos.com/v1/PrometheusRule': [PrometheusRule, '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule', 'IPrometheusRule'],
  'keda.sh/v1alpha1/ScaledObject': [ScaledObject, '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject', 'IScaledObject'],
  'keda.sh/v1alpha1/TriggerAuthentication': [TriggerAuthentication, '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication', 'ITriggerAuthentication'],
};

/** The CRDs committed in schemas/ (see its README for their source, version and license). */
const SCHEMAS = fileURLToPath(new URL('../schemas/', import.meta.url));
const CRDS: Record<string, [file: string, crd: string]> = {
  'autoscaling.k8s.io/v1/VerticalPodAutoscaler': ['vpa-crd.yaml', 'verticalpodautoscalers.autoscaling.k8s.io'],
  'monitoring.googleapis.com/v1/PodMonitoring': ['podmonitoring-crd.yaml', 'podmonitorings.monitoring.googleapis.com'],
  'monitoring.googleapis.com/v1/Rules': ['rules-crd.yaml', 'rules.monitoring.googleapis.com'],
  'gateway.networking.k8s.io/v1/Gateway': ['gateway-api-crds.yaml', 'gateways.gateway.networking.k8s.io'],
  'gateway.networking.k8s.io/v1/HTTPRoute': ['gateway-api-crds.yaml', 'httproutes.gateway.networking.k8s.io'],
};

type Schema = { [key: string]: unknown; properties?: Record<string, Schema> };

/** Keywords whose schemas constrain the object around them rather than define it: not closed themselves. */
const COMBINATORS = new Set(['oneOf', 'anyOf', 'allOf', 'not']);

/**
 * Closes every object schema that lists its properties, so that an unknown field fails; a branch of
 * a combinator (the Gateway API's `oneOf` of an address's `type` and `value`) names only the
 * properties it constrains, and stays open.
 */
function closed(schema: Schema, branch = false): Schema {
  if (typeof schema !== 'object' || schema === null) return schema;
  if (Array.isArray(schema)) return schema.map((item) => closed(item, branch)) as unknown as Schema;
  const copy: Schema = {};
  for (const [key, value] of Object.entries(schema)) copy[key] = typeof value === 'object' && value !== null ? closed(value as Schema, COMBINATORS.has(key)) : value;
  if (!branch && schema.properties && schema.additionalProperties === undefined && !schema['x-kubernetes-preserve-unknown-fields']) {
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

const keyOf = (manifest: Manifest) => `${manifest.apiVersion}/${manifest.kind}`;
const whereOf = (manifest: Manifest) => `${manifest.kind} ${manifest.metadata?.name}`;

/** A file that is never written: it exists only for the type checker, in the project so that its imports resolve. */
const CHECK_FILE = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '__manifest-types__.ts');
const COMPILER_OPTIONS: ts.CompilerOptions = {
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2022.d.ts'],
  types: [],
};
/** Parsed declaration files, kept across checks: parsing them is most of a check's cost. */
const declarations = new Map<string, ts.SourceFile | undefined>();
let previous: ts.Program | undefined;

/** The path of a node inside `const m0: IType = {...}`, as `.spec.template.spec.containers[0].image`. */
function pathOf(node: ts.Node): { index: number; path: string } | undefined {
  const parts: string[] = [];
  for (let at: ts.Node = node; !ts.isSourceFile(at); at = at.parent) {
    if (ts.isPropertyAssignment(at)) parts.unshift(`.${(at.name as ts.StringLiteral).text}`);
    if (ts.isArrayLiteralExpression(at.parent) && ts.isExpression(at)) parts.unshift(`[${at.parent.elements.indexOf(at)}]`);
    if (ts.isVariableDeclaration(at)) return { index: Number(at.name.getText().slice(1)), path: parts.join('') || '(root)' };
  }
  return undefined;
}

function nodeAt(file: ts.SourceFile, position: number): ts.Node {
  let node: ts.Node = file;
  for (let inner: ts.Node | undefined = file; inner; ) {
    node = inner;
    inner = ts.forEachChild(node, (child) => (child.getStart(file) <= position && position < child.getEnd() ? child : undefined));
  }
  return node;
}

/** Type-checks each manifest as a literal of its model's TypeScript type. */
function typeProblems(manifests: readonly Manifest[]): string[] {
  const typed = manifests.filter((manifest) => MODELS[keyOf(manifest)]);
  if (typed.length === 0) return [];
  const keys = [...new Set(typed.map(keyOf))];
  const source = [
    ...keys.map((key) => `import type { ${MODELS[key]![2]} as T${keys.indexOf(key)} } from '${MODELS[key]![1]}';`),
    ...typed.map((manifest, i) => `export const m${i}: T${keys.indexOf(keyOf(manifest))} = ${JSON.stringify(manifest, null, 1)};`),
  ].join('\n');
  const host = ts.createCompilerHost(COMPILER_OPTIONS);
  const readSourceFile = host.getSourceFile.bind(host);
  const checkFile = ts.createSourceFile(CHECK_FILE, source, ts.ScriptTarget.ES2022, true);
  host.getSourceFile = (fileName, ...rest) => {
    if (fileName === CHECK_FILE) return checkFile;
    if (!declarations.has(fileName)) declarations.set(fileName, readSourceFile(fileName, ...rest));
    return declarations.get(fileName);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (fileName) => fileName === CHECK_FILE || fileExists(fileName);
  previous = ts.createProgram([CHECK_FILE], COMPILER_OPTIONS, host, previous);
  return ts.getPreEmitDiagnostics(previous).map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n').split('\n')[0]!;
    const at = diagnostic.file === checkFile && diagnostic.start !== undefined ? pathOf(nodeAt(checkFile, diagnostic.start)) : undefined;
    if (!at) return `type check: ${message}`;
    const where = whereOf(typed[at.index]!);
    // "Object literal may only specify known properties…" (with or without "Did you mean…").
    if (diagnostic.code === 2353 || diagnostic.code === 2561) return `${where}: unknown field ${at.path}`;
    return `${where}: ${at.path}: ${message}`;
  });
}

/** Every problem with the manifests, each naming the object's kind and name, and the place. */
export function manifestProblems(manifests: readonly Manifest[]): string[] {
  const problems = manifests.flatMap((manifest) => {
    const key = keyOf(manifest);
    const where = whereOf(manifest);
    const model = MODELS[key];
    if (model) {
      try {
        new model[0](manifest as never).validate();
        return [];
      } catch (error) {
        return [`${where}: ${(error as Error).message}`];
      }
    }
    if (CRDS[key]) {
      const validate = crdValidator(key);
      if (validate(manifest)) return [];
      return (validate.errors ?? []).map(
        (e) => `${where}: ${e.instancePath || '(root)'} ${e.message}${e.params && 'additionalProperty' in e.params ? `: ${e.params.additionalProperty}` : ''}`,
      );
    }
    return [`${where}: no schema for ${key}`];
  });
  return [...problems, ...typeProblems(manifests)];
}
