import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { Registry } from 'prom-client';
import { createDriftMetrics, createMetrics, METRIC } from '../app/metrics.ts';
import { SETTINGS } from '../app/settings.ts';

/**
 * The reference tables of docs/, generated from the code that owns each fact: the settings table
 * (app/settings.ts), the metrics (app/metrics.ts) and the AnomalyDetector's props (their JSDoc in
 * charts/). `npm run docs` rewrites them; `npm run docs -- --check` (and a test) fails when one is
 * out of date.
 */

export const DOCS_DIR = 'docs';

const escape = (text: string) => text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
const table = (header: readonly string[], rows: readonly (readonly string[])[]) =>
  [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.map(escape).join(' | ')} |`)].join('\n');

/** Every server setting: its variable, its default, what it does. */
function settingsReference(): string {
  const rows = Object.values(SETTINGS).map((setting) => {
    const { variable, default: value, defaultText, doc } = setting;
    const format = (setting.format ?? String) as (value: unknown) => string;
    return [`\`${variable}\``, defaultText ?? `\`${format(value)}\``, doc];
  });
  return table(['variable', 'default', 'what'], rows);
}

/** Every metric the server registers under its own names (prom-client's process metrics aside). */
async function metricsReference(): Promise<string> {
  const registry = Registry.merge([createMetrics().registry, createDriftMetrics().registry]);
  const ours = new Set<string>(Object.values(METRIC));
  const rows = (await registry.getMetricsAsJSON())
    .filter((metric) => ours.has(metric.name))
    .map((metric) => {
      const { labelNames } = registry.getSingleMetric(metric.name) as unknown as { labelNames: string[] };
      return [`\`${metric.name}\``, String(metric.type), labelNames.join(', '), metric.help];
    });
  return table(['metric', 'type', 'labels', 'what'], rows);
}

/**
 * The AnomalyDetector's props as their JSDoc states them, where they are declared (the composition
 * or the construct that takes them), with the fields of the props' own interfaces as `prop.field`.
 */
function chartPropsReference(): string {
  const entry = path.resolve('charts/anomaly-detector.ts');
  const { options } = ts.parseJsonConfigFileContent(ts.readConfigFile('tsconfig.json', ts.sys.readFile).config, ts.sys, process.cwd());
  const program = ts.createProgram([entry], { ...options, noEmit: true });
  const checker = program.getTypeChecker();
  const props = program.getSourceFile(entry)!.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === 'AnomalyDetectorProps')!;
  const inCharts = (declaration: ts.Node | undefined) => declaration !== undefined && path.relative(process.cwd(), declaration.getSourceFile().fileName).startsWith('charts/');
  const rows: string[][] = [];
  const list = (type: ts.Type, prefix: string) => {
    for (const property of checker.getPropertiesOfType(type)) {
      const declaration = property.declarations?.[0];
      if (!declaration) continue;
      const name = prefix + property.name;
      const defaultTag = property.getJsDocTags(checker).find((tag) => tag.name === 'default');
      const file = path.relative(process.cwd(), declaration.getSourceFile().fileName);
      const optional = (property.flags & ts.SymbolFlags.Optional) !== 0;
      rows.push([
        `\`${name}\``,
        optional ? ts.displayPartsToString(defaultTag?.text) || '—' : 'required',
        ts.displayPartsToString(property.getDocumentationComment(checker)) || '',
        `[${path.basename(file)}](../${file})`,
      ]);
      // The fields of an interface of the charts' own (autoscaling, resources, the VPA's options).
      const propertyType = checker.getTypeOfSymbolAtLocation(property, declaration);
      const own = (propertyType.isUnion() ? propertyType.types : [propertyType]).find(
        (t) => t.isClassOrInterface() && t.getSymbol()?.declarations?.some((d) => ts.isInterfaceDeclaration(d) && inCharts(d)),
      );
      if (own) list(own, `${name}.`);
    }
  };
  list(checker.getTypeAtLocation(props.name), '');
  return table(['prop', 'default', 'what', 'declared in'], rows);
}

/** Each generated block by its name, as it appears in `<!-- generated: NAME -->`. */
export async function generatedBlocks(): Promise<Record<string, string>> {
  return { settings: settingsReference(), metrics: await metricsReference(), 'chart-props': chartPropsReference() };
}

const BLOCK = /(<!-- generated: ([\w-]+) \(npm run docs\) -->\n)[\s\S]*?(\n<!-- end: \2 -->)/g;

/** The Markdown files of docs/ with every generated block replaced by its current text. */
export async function regenerate(): Promise<{ file: string; before: string; after: string; blocks: string[] }[]> {
  const blocks = await generatedBlocks();
  const files = (await readdir(DOCS_DIR)).filter((name) => name.endsWith('.md')).map((name) => path.join(DOCS_DIR, name));
  return Promise.all(
    files.map(async (file) => {
      const before = await readFile(file, 'utf8');
      const names: string[] = [];
      const after = before.replace(BLOCK, (_, open: string, name: string, close: string) => {
        if (!(name in blocks)) throw new Error(`${file}: no generated block is named ${name} (there are ${Object.keys(blocks).join(', ')})`);
        names.push(name);
        return open + blocks[name] + close;
      });
      return { file, before, after, blocks: names };
    }),
  );
}

async function main(): Promise<void> {
  const check = process.argv.includes('--check');
  const stale = (await regenerate()).filter(({ before, after }) => before !== after);
  for (const { file, after } of stale) {
    if (check) process.stderr.write(`${file} is out of date: run npm run docs\n`);
    else await writeFile(file, after);
  }
  if (check && stale.length > 0) process.exitCode = 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
