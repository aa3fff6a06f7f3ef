import assert from 'node:assert/strict';
import { classifyHttpStatus, parseRetryAfter } from '../../activities/http-classify';
import { capRetryAfter, classifyThrown, excerpt, NETWORK_ERRORS } from '../../activities/registry';
import { OutboundError } from '../../shared/http/outbound';
import { MappingError } from '../../activities/types';

describe('outcome classification', () => {
  const classOf = (status: number) => classifyHttpStatus({ status }).outcome;
  it('2xx is success, 408/425/429/5xx transient, 3xx and other 4xx permanent', () => {
    assert.deepEqual([200, 201, 204].map(classOf), ['success', 'success', 'success']);
    assert.deepEqual([408, 425, 429, 500, 502, 503, 504].map(classOf), Array(7).fill('transient'));
    assert.deepEqual([301, 302, 400, 401, 403, 404, 409, 422].map(classOf), Array(8).fill('permanent'));
    assert.equal(classifyHttpStatus({ status: 302, headers: { location: 'http://10.0.0.1/' } }).code, 'redirect_refused');
  });
  it('keeps Retry-After in seconds or as an HTTP date, as parsed; the registry caps it', () => {
    assert.equal(classifyHttpStatus({ status: 503, headers: { 'retry-after': '7' } }).retryAfterMs, 7_000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('9999999'), 9_999_999_000);
    assert.equal(parseRetryAfter('soon'), undefined);
    const long = classifyHttpStatus({ status: 503, headers: { 'retry-after': '9999999' } });
    assert.equal(long.retryAfterMs, 9_999_999_000);
    assert.equal(capRetryAfter(long).retryAfterMs, 6 * 3_600_000);
    assert.equal(capRetryAfter({ ...long, retryAfterMs: 7_000 }).retryAfterMs, 7_000);
    assert.equal(capRetryAfter(classifyHttpStatus({ status: 503 })).retryAfterMs, undefined);
  });
  it('network faults before the request was sent are transient, our refusals and mapping errors permanent', () => {
    assert.equal(classifyThrown(new OutboundError('connection_refused', 'x'), 10_000).outcome, 'transient');
    assert.equal(classifyThrown(new OutboundError('dns_error', 'x'), 10_000).outcome, 'transient');
    assert.deepEqual(classifyThrown(new OutboundError('timeout', 'x', { sent: false }), 10_000), { outcome: 'transient', code: 'connect_timeout', reason: 'no answer within 10s; the request was not sent', countsAgainstEndpoint: true });
    assert.equal(classifyThrown(new OutboundError('connection_reset', 'reset', { sent: false }), 10_000).outcome, 'transient');
    assert.equal(classifyThrown(new OutboundError('blocked_address', 'x'), 10_000).outcome, 'permanent');
    assert.equal(classifyThrown(new MappingError('last_name is required'), 10_000).code, 'mapping_error');
  });
  it('a timeout or reset after the request was written, or from a transport that cannot tell, is unknown (it may have arrived)', () => {
    assert.deepEqual(classifyThrown(new OutboundError('timeout', 'x', { sent: true }), 10_000), { outcome: 'unknown', code: 'timeout', reason: 'no answer within 10s after the request was sent', countsAgainstEndpoint: true });
    assert.equal(classifyThrown(new OutboundError('connection_reset', 'reset', { sent: true }), 10_000).outcome, 'unknown');
    assert.equal(classifyThrown(new OutboundError('timeout', 'sdk timeout'), 10_000).outcome, 'unknown', 'an SDK transport cannot say whether it sent: may have');
    assert.equal(classifyThrown(new OutboundError('network_error', 'socket hang up', { sent: true }), 10_000).outcome, 'unknown');
  });
  it('names network failures from one table, whatever transport handed them over', () => {
    const network = (cause: object, sent?: boolean) => classifyThrown(new OutboundError('network_error', 'transport failed', { cause, ...(sent !== undefined ? { sent } : {}) }), 10_000);
    const errno = (code: string, message = code) => Object.assign(new Error(message), { code });
    assert.deepEqual(network(errno('ECONNREFUSED'), false), { outcome: 'transient', code: 'connection_refused', reason: 'connection refused', countsAgainstEndpoint: true });
    assert.deepEqual(network(errno('ENOTFOUND'), false), { outcome: 'transient', code: 'dns_error', reason: 'DNS lookup failed (ENOTFOUND)', countsAgainstEndpoint: true });
    assert.deepEqual(network(errno('ECONNRESET'), true), { outcome: 'unknown', code: 'connection_reset', reason: 'connection reset by the buyer, after the request was sent', countsAgainstEndpoint: true });
    assert.deepEqual(network(errno('ETIMEDOUT'), false), { outcome: 'transient', code: 'connect_timeout', reason: 'no answer within 10s; the request was not sent', countsAgainstEndpoint: true });
    assert.equal(network(errno('ERR_TLS_CERT_ALTNAME_MISMATCH'), false).code, 'tls_error', 'TLS by its code');
    assert.equal(network(errno('EPROTO', 'SSL routines: wrong version number'), false).code, 'tls_error', 'TLS by its message');
    assert.deepEqual(network(errno('EHOSTUNREACH'), false), { outcome: 'transient', code: 'network_error', reason: 'transport failed, before the request was sent', countsAgainstEndpoint: true });
    // The SDKs' shapes: axios's code, gaxios's code from a DOMException name, fetch's cause.
    assert.equal(network(Object.assign(new Error('timeout of 1500ms exceeded'), { name: 'AxiosError', code: 'ECONNABORTED' })).code, 'timeout');
    assert.equal(network(Object.assign(new Error('aborted'), { code: 'AbortError' })).code, 'timeout');
    assert.equal(network(Object.assign(new TypeError('fetch failed'), { cause: errno('UND_ERR_SOCKET') })).code, 'connection_reset');
    assert.deepEqual(network(Object.assign(new Error('canceled'), { code: 'ERR_CANCELED' })), { outcome: 'unknown', code: 'cancelled', reason: 'the attempt was cancelled after the request was sent', countsAgainstEndpoint: false });
    for (const [name, code] of Object.entries(NETWORK_ERRORS)) assert.ok(['dns_error', 'connection_refused', 'connection_reset', 'timeout', 'tls_error', 'aborted'].includes(code), name);
    assert.equal(classifyThrown(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), 10_000).code, 'internal_error', 'only what a transport hands over is a network failure');
  });
  it('keeps at most 4 KiB of a body, cut on a character boundary, and the headers of note', () => {
    const long = 'é'.repeat(5000);
    const out = excerpt({ status: 500, headers: { 'content-type': 'text/plain', 'set-cookie': 'x', 'retry-after': '5' }, body: long, bodyBytes: 10_000 });
    assert.ok(Buffer.byteLength(out.body!) <= 4096);
    assert.ok(!out.body!.includes('\uFFFD'));
    assert.equal(out.bodyBytes, 10_000);
    assert.deepEqual(out.headers, { 'content-type': 'text/plain', 'retry-after': '5' });
  });
});
