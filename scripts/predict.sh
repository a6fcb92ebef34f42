#!/usr/bin/env bash
# Posts an example heartbeat (a class mean from the model's metadata.json) to a running server
# and prints the verdict. Usage: scripts/predict.sh [URL] [normal|anomalous]
set -euo pipefail

url=${1:-http://127.0.0.1:8080}
example=${2:-anomalous}
model=${MODEL_NAME:-ecg-autoencoder}
metadata="$(cd "$(dirname "$0")/.." && pwd)/model/artifacts/metadata.json"

body=$(node -e '
  const [file, name] = process.argv.slice(1);
  const example = require(file).examples.find((e) => e.name === name);
  if (!example) { console.error(`predict.sh: no example "${name}" in ${file}`); process.exit(2); }
  console.log(JSON.stringify({ instances: [example.beat] }));
' "$metadata" "$example")

if ! response=$(curl -sS --max-time 10 --fail-with-body -H 'Content-Type: application/json' -d "$body" "${url%/}/v1/models/$model:predict" 2>&1); then
  echo "predict.sh: the request to ${url%/}/v1/models/$model:predict failed: $response" >&2
  exit 1
fi

node -e '
  const [example, text] = process.argv.slice(1);
  const [p] = JSON.parse(text).predictions;
  console.log(`${example} example: ${p.is_anomaly ? "ANOMALY" : "normal"} (reconstruction error ${p.reconstruction_error.toFixed(5)})`);
' "$example" "$response"
