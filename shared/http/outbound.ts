import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { AddressGuard } from './address-guard';

/**
 * The one HTTP client for buyer-supplied URLs. Every connection is checked by the address
 * guard on the address actually connected to (the check runs inside DNS lookup, so there is no
 * gap for DNS rebinding; literal IPs are checked before connecting). Redirects are never
 * followed. One deadline covers connect, headers and body. The body is read up to a cap.
 *
 * Failures (`OutboundErrorCode`): this client raises `timeout` (its deadline), `aborted` (the attempt's
 * signal), `blocked_address`, `invalid_url`, and `network_error` for every socket or DNS failure
 * (the original as `cause`): the registry names those (`dns_error`, `connection_refused`,
 * `connection_reset`, `tls_error`, `timeout`) from one table, for this client and the SDK kinds alike.
 */
export type OutboundErrorCode =
  | 'timeout'
  | 'dns_error'
  | 'connection_refused'
  | 'connection_reset'
  | 'tls_error'
  | 'blocked_address'
  | 'invalid_url'
  | 'aborted'
  | 'network_error';

export class OutboundError extends Error {
  /**
   * Whether the whole request had been written to the connection before the failure: a timeout or
   * a reset after that may have reached the buyer (outcome `unknown`); before it, it did not.
   * Undefined when the client cannot tell (SDK transports): treated as "may have".
   */
  readonly sent: boolean | undefined;

  constructor(readonly code: OutboundErrorCode, message: string, options?: { cause?: unknown; sent?: boolean }) {
    super(message, options);
    this.name = 'OutboundError';
    this.sent = options?.sent;
  }
}

export interface OutboundRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Most bytes of the answer to keep (default 64 KiB); the rest is counted, not kept. */
  maxBodyBytes?: number;
}

export interface OutboundResponse {
  status: number;
  statusText: string;
  headers: Record<string, string>;
  body: Buffer;
  /** Bytes the buyer sent (may exceed body.length). */
  bodyBytes: number;
  /** Address connected to, for the record. */
  remoteAddress?: string;
}

export interface Outbound {
  request(req: OutboundRequest): Promise<OutboundResponse>;
  readonly guard: AddressGuard;
}

const BLOCKED = Symbol('blocked');
/** How long a kept-alive socket may sit idle before it is closed rather than reused. */
const IDLE_SOCKET_MS = 2_000;

/** DNS resolution (all addresses of a host name): `dns.lookup` unless a test replaces it. */
export type Resolver = (hostname: string, callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;
const systemResolver: Resolver = (hostname, callback) => dnsLookup(hostname, { all: true }, callback);

export function createOutbound(options: { allow?: string | string[]; resolve?: Resolver } = {}): Outbound {
  const guard = new AddressGuard(options.allow ?? '');
  const resolve = options.resolve ?? systemResolver;

  const guardedLookup: LookupFunction = (hostname, opts, callback) => {
    resolve(hostname, (error, addresses) => {
      if (error) return callback(error, '', 0);
      for (const entry of addresses) {
        const refusal = guard.refusal(entry.address);
        if (refusal) {
          const blocked = Object.assign(new Error(`refused ${hostname}: ${refusal}`), { code: 'EBLOCKED', [BLOCKED]: true });
          return callback(blocked, '', 0);
        }
      }
      if (opts.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
      return callback(null, first.address, first.family);
    });
  };

  // Idle kept-alive sockets are dropped after IDLE_SOCKET_MS, well before common server keep-alive
  // timeouts (Node's 5 s, nginx's 75 s): a request written to a socket the server is closing at that
  // moment would be reset after it was written — an `unknown` outcome that holds a lead for nothing.
  const agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets: 256, lookup: guardedLookup, timeout: IDLE_SOCKET_MS }),
    'https:': new https.Agent({ keepAlive: true, maxSockets: 256, lookup: guardedLookup, timeout: IDLE_SOCKET_MS }),
  };

  async function request(req: OutboundRequest): Promise<OutboundResponse> {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      throw new OutboundError('invalid_url', `"${req.url}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new OutboundError('invalid_url', `scheme ${url.protocol} is not allowed`);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) {
      const refusal = guard.refusal(host);
      if (refusal) throw new OutboundError('blocked_address', `refused ${host}: ${refusal}`);
    }
    // No retry here, not even on a kept-alive socket reset: the buyer may have read the request
    // before resetting, and a second send within one attempt is a duplicate the record would not
    // show. A reset is a transient attempt like any other; the schedule retries it.
    return send(url, req);
  }

  function send(url: URL, req: OutboundRequest): Promise<OutboundResponse> {
    const maxBody = req.maxBodyBytes ?? 64 * 1024;
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise<OutboundResponse>((resolve, reject) => {
      let settled = false;
      // Set once the request is fully handed to the connection: a failure after it is ambiguous.
      let written = false;
      const finish = (error: OutboundError | null, value?: OutboundResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.signal?.removeEventListener('abort', onAbort);
        if (error) reject(error.sent === undefined ? new OutboundError(error.code, error.message, { cause: error.cause, sent: written }) : error);
        else resolve(value!);
      };
      const outgoing = transport.request(url, {
        method: req.method,
        headers: { ...req.headers, ...(req.body !== undefined ? { 'content-length': String(Buffer.byteLength(req.body)) } : {}) },
        agent: agents[url.protocol as 'http:' | 'https:'],
      });
      const timer = setTimeout(() => {
        outgoing.destroy();
        finish(new OutboundError('timeout', `no answer within ${req.timeoutMs} ms`));
      }, req.timeoutMs);
      const onAbort = () => {
        outgoing.destroy();
        finish(new OutboundError('aborted', 'the attempt was cancelled'));
      };
      req.signal?.addEventListener('abort', onAbort, { once: true });
      outgoing.on('finish', () => {
        written = true;
      });
      outgoing.on('error', (error: NodeJS.ErrnoException & { [BLOCKED]?: boolean }) => finish(toOutboundError(error)));
      outgoing.on('response', (res) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        let total = 0;
        res.on('data', (chunk: Buffer) => {
          total += chunk.length;
          if (kept < maxBody) {
            const slice = chunk.subarray(0, maxBody - kept);
            chunks.push(slice);
            kept += slice.length;
          }
        });
        res.on('error', (error) => finish(toOutboundError(error)));
        res.on('end', () =>
          finish(null, {
            status: res.statusCode ?? 0,
            statusText: res.statusMessage ?? '',
            headers: flattenHeaders(res.headers),
            body: Buffer.concat(chunks),
            bodyBytes: total,
            remoteAddress: res.socket?.remoteAddress,
          }),
        );
      });
      if (req.body !== undefined) outgoing.write(req.body);
      outgoing.end();
    });
  }

  return { request, guard };
}

/**
 * A socket's or DNS lookup's failure as an `OutboundError`: the address guard's refusal as
 * `blocked_address`; any other as `network_error` with the original as its cause, named (refused,
 * reset, DNS, TLS, timed out) by the registry's one table (`NETWORK_ERRORS` in activities/registry.ts).
 */
function toOutboundError(error: NodeJS.ErrnoException & { [BLOCKED]?: boolean }): OutboundError {
  if (error instanceof OutboundError) return error;
  if (error[BLOCKED]) return new OutboundError('blocked_address', error.message, { cause: error });
  return new OutboundError('network_error', `${error.code ?? 'network error'}: ${error.message}`, { cause: error });
}

function flattenHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}
