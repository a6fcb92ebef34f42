#!/usr/bin/env bash
# Posts one of the served model's example rows (for a model trained here, the mean normal or
# anomalous beat of its training data) to a running server, and prints the verdict. The server
# says which model it serves and what its examples are (GET /ui/model).
# Usage: [API_KEY=key] scripts/predict.sh [URL] [EXAMPLE: anomalous, normal, or another name in the model's metadata]
# API_KEY: the key of a server that asks for one (API_KEYS_FILE); sent as a Bearer token.
set -euo pipefail

url=${1:-http://127.0.0.1:8080}
url=${url%/}
example=${2:-anomalous}

get() {
  local response header=''
  [[ -n ${API_KEY:-} ]] && header="Authorization: Bearer $API_KEY"
  # The key reaches curl on its standard input, not its command line, which `ps` shows.
  if ! response=$(curl -sS --max-time 10 --fail-with-body -H @- "$@" 2>&1 <<< "$header"); then
    echo "predict.sh: the request to ${*: -1} failed: $response" >&2
    exit 1
  fi
  printf '%s' "$response"
}

facts=$(get "$url/ui/model")
# The model's name, the request body, and the names of its score and verdict outputs, a line each.
lines=$(node -e '
  const [text, name] = process.argv.slice(1);
  const model = JSON.parse(text);
  const example = model.examples.find((e) => e.name === name);
  if (!example) {
    console.error(`predict.sh: model ${model.name} has no example "${name}"; its examples: ${model.examples.map((e) => e.name).join(", ") || "none"}`);
    process.exit(2);
  }
  const output = (role) => model.signature.outputs.find((o) => o.role === role).name;
  console.log([model.name, JSON.stringify({ instances: [example.values] }), output("score"), output("verdict")].join("\n"));
' "$facts" "$example") || exit 2
mapfile -t request <<< "$lines"

response=$(get -H 'Content-Type: application/json' -d "${request[1]}" "$url/v1/models/${request[0]}:predict")

node -e '
  const [example, score, verdict, text] = process.argv.slice(1);
  const [p] = JSON.parse(text).predictions;
  console.log(`${example} example: ${p[verdict] ? "ANOMALY" : "normal"} (${score.replaceAll("_", " ")} ${p[score].toFixed(5)})`);
' "$example" "${request[2]}" "${request[3]}" "$response"
