# The anomaly-serve server: compiled TypeScript, production dependencies with tfjs-node (native
# libtensorflow; --build-arg BACKEND=wasm leaves it out), and the bundled model. glibc base:
# tfjs-node does not run on Alpine (musl). Every stage's base is pinned by digest, the same in each:
# a rebuild gets the same base, and a moved tag changes nothing until the digest is updated on
# purpose (docs/security.md, "Supply chain").

# Compile app/, and the modules of lib/ and model/ that it imports (the runtime and the artifact format), into build/.
FROM node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0 AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY lib ./lib
COPY model ./model
COPY app ./app
# The web page's files are served as they are, from beside the compiled module.
RUN npx tsc -p tsconfig.build.json && cp app/ui/index.html app/ui/app.js build/app/ui/

# Production dependencies only, less the source maps and type declarations nothing reads at run
# time (two thirds of their size). BACKEND=tensorflow (the default): with tfjs-node, whose install
# downloads libtensorflow; the build fails here if it did not, rather than the server falling back
# to a slower backend, and says why: npm skips a failed optional dependency quietly, so its install
# script runs in the foreground, its own error in the log. BACKEND=wasm: without it (optional dependencies left out), nothing
# downloaded at build time, a smaller image; the server runs on WebAssembly.
FROM node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0 AS deps
ARG BACKEND=tensorflow
WORKDIR /app
COPY package.json package-lock.json ./
RUN case "$BACKEND" in \
      tensorflow) npm ci --omit=dev --no-audit --no-fund --foreground-scripts \
        && { node -e "require('@tensorflow/tfjs-node')" 2>/dev/null || { echo "@tensorflow/tfjs-node did not install: its install script's own output is above (it downloads libtensorflow); where that cannot be reached, build with --build-arg BACKEND=wasm" >&2; exit 1; }; } ;; \
      wasm) npm ci --omit=dev --omit=optional --no-audit --no-fund ;; \
      *) echo "BACKEND must be tensorflow or wasm, got '$BACKEND'" >&2 && exit 1 ;; \
    esac \
 && npm cache clean --force \
 && find node_modules \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -type f -delete

FROM node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0 AS runtime
ARG BACKEND=tensorflow
# The server runs on the backend the image was built for, or fails: never a silent fallback.
ENV NODE_ENV=production BACKEND=${BACKEND}
WORKDIR /app
# Dependencies first: a code change does not reinstall them.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY model/artifacts ./model/artifacts
COPY --from=build /app/build ./build
USER 10001:10001
EXPOSE 8080 8082
# For a plain `docker run`: healthy once the server answers its readiness path (Kubernetes probes it itself).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD ["node", "build/app/healthcheck.js"]
# Exec form: node is PID 1 and receives SIGTERM itself, so the drain runs.
CMD ["node", "build/app/server.js"]
