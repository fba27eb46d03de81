#!/usr/bin/env bash
# Every collector module moves together: core v0.145.0, stable v1.51.0, contrib v0.145.0.
# A module pulled to another release by `go get` or `go mod tidy` breaks the OCB build in ways
# that are slow to trace back, so it fails the lint instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=$(go list -m all 2>/dev/null | awk '
  $1 ~ /^go\.opentelemetry\.io\/collector/ && $2 != "v0.145.0" && $2 != "v1.51.0" { print }
  $1 ~ /^github\.com\/open-telemetry\/opentelemetry-collector-contrib/ && $2 != "v0.145.0" { print }')
bad+=$(grep -E 'opentelemetry|cilium' builder-config.yaml | grep -E 'gomod:' | grep -vE 'v0\.145\.0|v1\.51\.0' || true)
if [ -n "$bad" ]; then
  echo "collector modules off the pinned release (core v0.145.0 / stable v1.51.0 / contrib v0.145.0):" >&2
  echo "$bad" >&2
  exit 1
fi
echo "collector modules pinned at one release"
