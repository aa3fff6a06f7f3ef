/** Which OTEL_* settings turn traces on (shared/tracing.ts), and what an access-log line may show of a path. */
import assert from 'node:assert/strict';
import { tracingWanted } from '../../shared/tracing';
import { loggablePath } from '../../shared/http/express';

describe('tracing settings', () => {
  it('When no OTEL_* variable is set, then traces are off', () => {
    assert.equal(tracingWanted({}), undefined);
  });
  it('When an OTLP endpoint or the otlp exporter is set, then traces go out over OTLP', () => {
    assert.equal(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), 'otlp');
    assert.equal(tracingWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }), 'otlp');
    assert.equal(tracingWanted({ OTEL_TRACES_EXPORTER: 'otlp' }), 'otlp');
    assert.equal(tracingWanted({ OTEL_TRACES_EXPORTER: 'console' }), 'console');
  });
  it('When the SDK is disabled or the exporter is none, then traces are off even with an endpoint', () => {
    assert.equal(tracingWanted({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), undefined);
    assert.equal(tracingWanted({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), undefined);
  });
  it('When an exporter or protocol this build cannot speak is asked for, then the service refuses to start with the variable named', () => {
    assert.throws(() => tracingWanted({ OTEL_TRACES_EXPORTER: 'zipkin' }), /OTEL_TRACES_EXPORTER/);
    assert.throws(() => tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), /OTEL_EXPORTER_OTLP_PROTOCOL/);
  });
});

describe('access-log paths', () => {
  it('When a path has a query string or a token segment, then the log shows neither', () => {
    assert.equal(loggablePath('/v1/lookup?email=a%40b.example'), '/v1/lookup');
    assert.equal(loggablePath('/v1/codec/t/cdc_secret123/decode'), '/v1/codec/t/****/decode');
    assert.equal(loggablePath('/v1/leads/ld_1'), '/v1/leads/ld_1');
  });
});
