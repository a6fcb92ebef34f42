import { readFileSync } from 'node:fs';
import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { build, type Plugin } from 'esbuild';
import { pathToFileURL } from 'node:url';
import { parseOptions, runCli, UsageError } from './cli.ts';
import { installedWasmBinaries } from './wasm-binaries.ts';

/**
 * `npm run build`: the server as the image runs it, one ES module for each entry point in `build/`, with
 * the files it reads beside it (the web page's two files and, for the wasm backend, its
 * WebAssembly binaries), and nothing of node_modules. `--backend tensorflow` leaves TensorFlow.js
 * out of the bundle: tfjs-node is a native addon that registers its backend with the TensorFlow.js
 * in node_modules, so the image that runs it installs that and the bundle imports it from there.
 */

/** The Node.js line the project runs on: package.json's engines (the image, Cloud Build and CI follow it). */
export const NODE_MAJOR = Number(/\d+/.exec((JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string } }).engines.node)![0]);

/** The folder the bundle is written to; the Dockerfile copies it whole. */
export const BUNDLE_DIR = 'build';
const ENTRIES = { server: 'app/server.ts', healthcheck: 'app/healthcheck.ts' };
/** The union package's parts that the server never calls: bundled, they would only cost load time and bytes. */
const UNUSED_TFJS_PARTS = ['@tensorflow/tfjs-backend-webgl', '@tensorflow/tfjs-converter', '@tensorflow/tfjs-data'];
/** The web page's folder: its files that are not TypeScript are served as they are, read from beside the server. */
const PAGE_DIR = 'app/ui';

/** Resolves the unused parts to an empty module (the union package only re-exports them and reads their version). */
const leaveOut: Plugin = {
  name: 'leave-out-unused-tfjs',
  setup(bundler) {
    const filter = new RegExp(`^(${UNUSED_TFJS_PARTS.map((name) => name.replace(/[/.-]/g, '\\$&')).join('|')})$`);
    bundler.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'left-out' }));
    bundler.onLoad({ filter: /.*/, namespace: 'left-out' }, () => ({ contents: 'module.exports = {};', loader: 'js' }));
  },
};

/** Writes the bundle for an image of `backend` to `outdir`; resolves with the packages bundled in it. */
export async function bundle(backend: 'tensorflow' | 'wasm', outdir = BUNDLE_DIR): Promise<string[]> {
  await rm(outdir, { recursive: true, force: true });
  const { metafile } = await build({
    metafile: true,
    entryPoints: ENTRIES,
    outdir,
    bundle: true,
    platform: 'node',
    target: `node${NODE_MAJOR}`,
    format: 'esm',
    // ES modules by their extension: the image has no package.json to say "type": "module".
    outExtension: { '.js': '.mjs' },
    minifySyntax: true,
    legalComments: 'none',
    logLevel: 'warning',
    // tfjs-node always comes from node_modules (a native addon); with it, TensorFlow.js too.
    external: backend === 'tensorflow' ? ['@tensorflow/*'] : ['@tensorflow/tfjs-node'],
    plugins: backend === 'tensorflow' ? [] : [leaveOut],
    // The CommonJS packages in an ES module bundle still call require() and read __dirname.
    banner: {
      js: [
        "import { createRequire as __createRequire } from 'node:module';",
        "import { fileURLToPath as __fileURLToPath } from 'node:url';",
        'const require = __createRequire(import.meta.url);',
        'const __filename = __fileURLToPath(import.meta.url);',
        "const __dirname = __fileURLToPath(new URL('.', import.meta.url));",
      ].join('\n'),
    },
  });
  await mkdir(outdir, { recursive: true });
  for (const file of (await readdir(PAGE_DIR)).filter((name) => !name.endsWith('.ts'))) await copyFile(path.join(PAGE_DIR, file), path.join(outdir, file));
  if (backend === 'wasm') {
    const binaries = installedWasmBinaries();
    for (const file of (await readdir(binaries)).filter((name) => name.endsWith('.wasm'))) await copyFile(path.join(binaries, file), path.join(outdir, file));
  }
  const packages = Object.keys(metafile.inputs).map((input) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input)?.[1]);
  return [...new Set(packages.filter((name) => name !== undefined))].sort();
}

const USAGE = `Usage: npm run build -- [--backend wasm|tensorflow]
  --backend NAME   the backend the image is built for: wasm (default; TensorFlow.js in the bundle)
                   or tensorflow (TensorFlow.js and tfjs-node imported from node_modules)
`;

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runCli('build', USAGE, async (argv, logger) => {
    const { backend = 'wasm' } = parseOptions(argv, { backend: { type: 'string' } });
    if (backend !== 'tensorflow' && backend !== 'wasm') throw new UsageError(`--backend must be tensorflow or wasm (the backends an image is built for), got "${backend}"`);
    const packages = await bundle(backend);
    logger.info({ backend, outdir: BUNDLE_DIR, packages: packages.length }, 'bundled');
  });
}
