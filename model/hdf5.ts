import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as H5 from 'h5wasm/node';

export type { Dataset, Group, File as H5File } from 'h5wasm/node';

/**
 * h5wasm's Node build, loaded with require() where Node.js can (20.19 and later): through
 * `import`, tsx's loader, which `npm run import` runs under, rewrites the 4 MB module's dynamic
 * imports and maps its source, which cost every import 1.1 s and 560 MiB. Its exports map has an
 * `import` condition only, so the file is resolved as `import` would, then required.
 */
async function load(): Promise<typeof H5> {
  try {
    return createRequire(import.meta.url)(fileURLToPath(import.meta.resolve('h5wasm/node'))) as typeof H5;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_REQUIRE_ESM') throw error;
    return import('h5wasm/node');
  }
}

let loaded: typeof H5 | undefined;

/** h5wasm, ready, with the HDF5 library's errors thrown as exceptions rather than printed on stderr. */
export async function hdf5(): Promise<typeof H5> {
  if (loaded === undefined) {
    const module = await load();
    (await module.default.ready).activate_throwing_error_handler();
    loaded = module;
  }
  return loaded;
}

export const isGroup = (entity: unknown): entity is H5.Group => loaded !== undefined && entity instanceof loaded.Group;
export const isDataset = (entity: unknown): entity is H5.Dataset => loaded !== undefined && entity instanceof loaded.Dataset;
