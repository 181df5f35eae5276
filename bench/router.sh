#!/usr/bin/env bash
# The benchmark's router slot: `switchyard router` on one worker, with a dtab
# that sends every name to the benchmark's backend through /$/inet, and the
# metrics that every request records. proxy-bench.sh sets BACKEND_HOST,
# BACKEND_PORT and ROUTER_PORT; SWITCHYARD names the binary. With ZIPKIN_PORT
# set, every request is traced (sampleRate 1.0) to a collector there.
set -euo pipefail
: "${SWITCHYARD:?SWITCHYARD must name the switchyard binary}"
config=$(mktemp --suffix=.yaml)
cat >"$config" <<YAML
admin: {ip: 127.0.0.1, port: $((ROUTER_PORT + 1000))}
routers:
- protocol: http
  label: bench
  dtab: /svc => /\$/inet/${BACKEND_HOST}/${BACKEND_PORT};
  servers:
  - {ip: 127.0.0.1, port: ${ROUTER_PORT}}
YAML
if [[ -n "${ZIPKIN_PORT:-}" ]]; then
  cat >>"$config" <<YAML
telemetry:
- {kind: io.l5d.zipkin, host: 127.0.0.1, port: ${ZIPKIN_PORT}, sampleRate: 1.0}
YAML
fi
exec "$SWITCHYARD" router --workers 1 -c "$config"
