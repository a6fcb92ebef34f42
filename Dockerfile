# The anomaly-serve server: one bundled ES module (lib/bundle.ts), the bundled model, and
# Node.js alone on Debian. BACKEND=tensorflow (the default) adds tfjs-node (native libtensorflow)
# and the TensorFlow.js it registers with; --build-arg BACKEND=wasm needs no node_modules at all.
# glibc bases: tfjs-node does not run on Alpine (musl). Every base is pinned by digest: a rebuild
# gets the same base, and a moved tag changes nothing until the digest is updated on purpose
# (docs/security.md, "Supply chain").

# Bundle app/ and what it imports into build/ (esbuild; the type check is `npm test`'s).
FROM node:24-bookworm-slim@sha256:235600a8101ab264e117b1768e925532262668dc9b581ef1dd7d96ced463b8e7 AS build
ARG BACKEND=tensorflow
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY lib ./lib
COPY model ./model
COPY app ./app
RUN npm run build -- --backend "$BACKEND"

# BACKEND=tensorflow: the production dependencies with tfjs-node, whose install downloads
# libtensorflow, less the source maps and type declarations nothing reads at run time. The build
# fails here if it did not install, rather than the server falling back to a slower backend, and
# says why: npm skips a failed optional dependency quietly, so its install script runs in the
# foreground, its own error in the log. BACKEND=wasm: nothing; the bundle carries all it runs.
FROM node:24-bookworm-slim@sha256:235600a8101ab264e117b1768e925532262668dc9b581ef1dd7d96ced463b8e7 AS deps
ARG BACKEND=tensorflow
WORKDIR /app
COPY package.json package-lock.json ./
RUN case "$BACKEND" in \
      tensorflow) npm ci --omit=dev --no-audit --no-fund --foreground-scripts \
        && { node -e "require('@tensorflow/tfjs-node')" 2>/dev/null || { echo "@tensorflow/tfjs-node did not install: its install script's own output is above (it downloads libtensorflow); where that cannot be reached, build with --build-arg BACKEND=wasm" >&2; exit 1; }; } \
        && npm cache clean --force \
        && find node_modules \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -type f -delete ;; \
      wasm) mkdir node_modules ;; \
      *) echo "BACKEND must be tensorflow or wasm, got '$BACKEND'" >&2 && exit 1 ;; \
    esac

# Debian and the node binary of the build's base: no npm, corepack or yarn where the server runs.
FROM debian:bookworm-slim@sha256:abd67ffcfa541b485a3dff59865ab629aa048a6c613e639d36e7456b0b229241 AS runtime
ARG BACKEND=tensorflow
# The server runs on the backend the image was built for, or fails: never a silent fallback.
ENV NODE_ENV=production BACKEND=${BACKEND}
WORKDIR /app
COPY --from=build /usr/local/bin/node /usr/local/bin/node
# Dependencies first: a code change does not copy them again.
COPY --from=deps /app/node_modules ./node_modules
COPY model/artifacts ./model/artifacts
COPY --from=build /app/build ./build
USER 10001:10001
EXPOSE 8080 8082
# For a plain `docker run`: healthy once the server answers its readiness path (Kubernetes probes it itself).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD ["node", "build/healthcheck.mjs"]
# Exec form: node is PID 1 and receives SIGTERM itself, so the drain runs.
CMD ["node", "--max-semi-space-size=16", "build/server.mjs"]
