import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * The wasm backend's WebAssembly binaries: the bundle copies them beside itself (lib/bundle.ts),
 * and the backend loads them from there, or from the installed package (model/backend.ts).
 */
export const WASM_BINARY = 'tfjs-backend-wasm.wasm';

/** The folder of the installed package that holds the binaries. */
export const installedWasmBinaries = () => path.dirname(createRequire(import.meta.url).resolve(`@tensorflow/tfjs-backend-wasm/dist/${WASM_BINARY}`));
