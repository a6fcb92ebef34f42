import { readFileSync } from 'node:fs';
import { cp, mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';

/** A step of cloudbuild.yaml, as the tests read it. */
export interface Step {
  readonly id: string;
  readonly name: string;
  readonly entrypoint?: string;
  readonly args?: string[];
  readonly env?: string[];
  readonly waitFor?: string[];
}

export interface CloudBuild {
  readonly substitutions: Record<string, string>;
  readonly steps: Step[];
  readonly images: string[];
  readonly artifacts: { objects: { location: string; paths: string[] } };
  readonly options: Record<string, unknown>;
}

/** cloudbuild.yaml, parsed. */
export const cloudBuild = parse(readFileSync('cloudbuild.yaml', 'utf8')) as CloudBuild;

/** A step by its id. */
export const step = (id: string): Step => cloudBuild.steps.find((s) => s.id === id)!;

/**
 * Cloud Build's substitution of `text`: the file's substitutions with `overrides` (as
 * `--substitutions` gives them), the built-ins a trigger sets, and `$$` as a literal `$`.
 */
export function substitute(text: string, overrides: Record<string, string> = {}): string {
  const builtIns: Record<string, string> = { PROJECT_ID: 'my-project', SHORT_SHA: '1a2b3c4' };
  // A character no YAML here holds stands for the literal dollars while the rest is substituted.
  let result = text.replaceAll('$$', '\u0000');
  for (let i = 0; i < 3; i++) {
    result = result.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, braced: string, bare: string) => {
      const key = braced ?? bare;
      const value = overrides[key] ?? cloudBuild.substitutions[key] ?? builtIns[key];
      if (value === undefined) throw new Error(`cloudbuild.yaml uses $${key}, which nothing defines`);
      return value;
    });
  }
  return result.replaceAll('\u0000', '$');
}

/** A bash step's script, substituted. */
export const stepScript = (id: string, overrides: Record<string, string> = {}) => substitute(step(id).args!.at(-1)!, overrides);

/**
 * A workspace as Cloud Build's steps see it (/workspace: the repository's files that the npm
 * scripts they run need, and node_modules), made in `scratch`.
 */
export async function stepWorkspace(scratch: string): Promise<string> {
  const workspace = path.join(scratch, 'workspace');
  await mkdir(workspace);
  for (const entry of ['package.json', 'tsconfig.json', 'lib', 'app', 'model', 'scripts']) await cp(entry, path.join(workspace, entry), { recursive: true });
  await symlink(path.resolve('node_modules'), path.join(workspace, 'node_modules'));
  return workspace;
}
