import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DOCS_DIR, generatedBlocks, regenerate } from './docs.ts';

const MARKDOWN = ['README.md', 'ARCHITECTURE.md', ...readdirSync(DOCS_DIR).filter((f) => f.endsWith('.md')).map((f) => path.join(DOCS_DIR, f))];

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as "-". */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-');

/** The headings of a Markdown file, outside code blocks. */
function anchors(file: string): Set<string> {
  let inCode = false;
  const found = new Set<string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.startsWith('```')) inCode = !inCode;
    else if (!inCode && /^#{1,6} /.test(line)) found.add(slug(line.replace(/^#+ /, '')));
  }
  return found;
}

describe('the documentation', () => {
  it('has every generated reference table as the code makes it (npm run docs)', async () => {
    const files = await regenerate();
    expect(files.filter(({ before, after }) => before !== after).map(({ file }) => file)).toEqual([]);
    // Each table is in the docs once.
    expect(files.flatMap(({ blocks }) => blocks).sort()).toEqual(Object.keys(await generatedBlocks()).sort());
  }, 60_000);

  it.each(MARKDOWN)('%s links only to files and headings that exist', (file) => {
    const broken: string[] = [];
    for (const [, target] of readFileSync(file, 'utf8').matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue;
      const [linked, anchor] = target!.split('#') as [string, string | undefined];
      const resolved = linked === '' ? file : path.join(path.dirname(file), linked);
      if (!existsSync(resolved)) broken.push(target!);
      else if (anchor && resolved.endsWith('.md') && !anchors(resolved).has(anchor)) broken.push(target!);
    }
    expect(broken).toEqual([]);
  });

  it('ARCHITECTURE.md names only files and folders that exist', () => {
    const text = readFileSync('ARCHITECTURE.md', 'utf8');
    // Paths as the layout and the tables name them: `app/settings.ts`, `charts/`, and the layout's tree.
    const quoted = [...text.matchAll(/`((?:lib|model|app|charts|loadtest|scripts|test|schemas|docs|dist)\/[\w./-]*)`/g)].map((m) => m[1]!);
    const tree = text.slice(text.indexOf('```'), text.indexOf('```', text.indexOf('```') + 3));
    const treeFiles: string[] = [];
    let folder = '';
    for (const line of tree.split('\n')) {
      const top = /^([\w-]+\/)/.exec(line);
      if (top) folder = top[1]!;
      const nested = /^ {2}([\w./-]+\.(?:ts|js|html|json|bin))\b/.exec(line) ?? /^ {2}([\w-]+\/)/.exec(line);
      if (nested && folder) treeFiles.push(folder + nested[1]);
    }
    expect(treeFiles.length).toBeGreaterThan(20);
    expect([...quoted, ...treeFiles].filter((p) => !existsSync(p.replace(/\*.*$/, '')))).toEqual([]);
  });
});
