/**
 * The codec endpoint of the Temporal UI ("remote codec"): POST …/decode and …/encode with
 * `{payloads: [{metadata: {k: base64}, data: base64}]}`, so operators see lead data that is
 * encrypted in Temporal's history. Authenticated: the admin token (Bearer, e.g. a UI that passes
 * its access token, or scripts), or — for a UI that cannot send credentials, like the dev
 * server's — a dedicated codec token in the path (`/v1/codec/t/<CODEC_TOKEN>/decode`), which
 * `npm start` wires into the dev server's UI. CORS answers only the configured UI origins.
 */
import express, { Router, type RequestHandler } from 'express';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { bearerToken, tokensEqual } from '../../shared/api-keys';
import { ForbiddenError, UnauthorizedError, ValidationError } from '../../shared/errors';

export interface CodecDeps {
  codec: PayloadCodec;
  adminToken: string;
  codecToken: string;
  corsOrigins: string[];
}

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

function fromJson(payload: JsonPayload, index: number): Payload {
  if (payload === null || typeof payload !== 'object') throw new ValidationError([{ path: `payloads.${index}`, message: 'must be a payload object' }]);
  const metadata: Record<string, Uint8Array> = {};
  for (const [key, value] of Object.entries(payload.metadata ?? {})) {
    if (typeof value !== 'string') throw new ValidationError([{ path: `payloads.${index}.metadata.${key}`, message: 'must be base64' }]);
    metadata[key] = Buffer.from(value, 'base64');
  }
  return { metadata, data: Buffer.from(typeof payload.data === 'string' ? payload.data : '', 'base64') };
}

function toJson(payload: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(Object.entries(payload.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')])),
    data: Buffer.from(payload.data ?? new Uint8Array()).toString('base64'),
  };
}

export function createCodecRoutes(deps: CodecDeps): Router {
  const router = Router();

  const cors: RequestHandler = (req, res, next) => {
    const origin = req.get('origin');
    if (origin && deps.corsOrigins.includes(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
      res.setHeader('Access-Control-Max-Age', '600');
    }
    if (req.method === 'OPTIONS') return void res.status(origin && deps.corsOrigins.includes(origin) ? 204 : 403).end();
    next();
  };

  const byAdminToken: RequestHandler = (req, _res, next) => {
    const token = bearerToken(req.get('authorization'));
    if (!token) throw new UnauthorizedError('The codec endpoint needs the admin token.');
    if (!tokensEqual(token, deps.adminToken)) throw new UnauthorizedError('The token is not valid.');
    next();
  };
  const byPathToken: RequestHandler = (req, _res, next) => {
    if (!deps.codecToken || !tokensEqual(String(req.params.token), deps.codecToken)) throw new ForbiddenError('Not a codec token.');
    next();
  };

  const run = (direction: 'encode' | 'decode'): RequestHandler => async (req, res) => {
    const body = req.body as { payloads?: unknown } | undefined;
    if (!body || !Array.isArray(body.payloads)) throw new ValidationError([{ path: 'payloads', message: 'must be an array of payloads' }]);
    const payloads = (body.payloads as JsonPayload[]).map(fromJson);
    const result = direction === 'decode' ? await deps.codec.decode(payloads) : await deps.codec.encode(payloads);
    res.json({ payloads: result.map(toJson) });
  };

  const json = express.json({ limit: '8mb', type: () => true });
  for (const direction of ['decode', 'encode'] as const) {
    router.options([`/${direction}`, `/t/:token/${direction}`], cors);
    router.post(`/${direction}`, cors, byAdminToken, json, run(direction));
    router.post(`/t/:token/${direction}`, cors, byPathToken, json, run(direction));
  }
  return router;
}
