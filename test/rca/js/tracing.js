'use strict';
// Loaded with `node --require ./tracing.js` before the service, as the OpenTelemetry JS docs
// have it: the official auto-instrumentation with its defaults, spans sent over OTLP/HTTP
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME and OTEL_BSP_* come from the environment).
const { NodeSDK } = require('@opentelemetry/sdk-node');
const { getNodeAutoInstrumentations } = require('@opentelemetry/auto-instrumentations-node');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');

// The suite's load generator names the customer in X-User-Id; the SERVER span carries it as
// enduser.id so that an incident can say which customers a fault reached.
function userAttributes(request) {
  const user = request.headers && request.headers['x-user-id'];
  return user ? { 'enduser.id': String(user) } : {};
}

const sdk = new NodeSDK({
  traceExporter: new OTLPTraceExporter(),
  instrumentations: [
    getNodeAutoInstrumentations({
      '@opentelemetry/instrumentation-http': { startIncomingSpanHook: userAttributes },
    }),
  ],
});
sdk.start();

// Spans still batched when the service is told to stop are flushed before it exits.
module.exports.shutdownTracing = () => sdk.shutdown();
