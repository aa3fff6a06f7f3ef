/**
 * A local Zapier catch hook. Zapier publishes no spec for catch hooks; what it does is what its
 * hooks answer in practice (shown by Zapier staff in zapier/visual-builder#133): any POST to
 * `/hooks/catch/<account>/<hook>/` is accepted with
 * `200 {"id":…,"request_id":…,"attempt":…,"status":"success"}` and the Zap runs later.
 * Built on the generic scriptable buyer (test/fakes/buyer.ts): `script()` makes it answer errors,
 * slowly, or hang up. It records as violations anything our zapier kind must never send: another
 * path or method, a non-JSON content type, a body that is not a JSON object.
 */
import { randomUUID } from 'node:crypto';
import { startFakeBuyer, type FakeBuyer, type ReceivedRequest, type ScriptStep } from '../buyer';

export interface ZapierFake {
  hookUrl: string;
  requests: ReceivedRequest[];
  /** Ids this fake answered with, in order (successful answers only). */
  ids: string[];
  violations: Array<{ path: string; error: string }>;
  /** Steps for the next requests, one each, in order; then `{"status":"success"}` answers. */
  script(steps: ScriptStep[]): void;
  waitForRequests(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

export const HOOK_PATH = '/hooks/catch/1234567/abc9xyz/';

export async function startZapierFake(): Promise<ZapierFake> {
  const ids: string[] = [];
  const violations: ZapierFake['violations'] = [];
  let steps: ScriptStep[] = [];

  const success = (): ScriptStep => {
    const id = randomUUID();
    const requestId = randomUUID();
    ids.push(id);
    return { status: 200, body: { id, request_id: requestId, attempt: requestId, status: 'success' } };
  };

  const buyer: FakeBuyer = await startFakeBuyer();
  buyer.script((req) => {
    if (req.method !== 'POST') violations.push({ path: req.path, error: `method ${req.method}` });
    if (req.path !== HOOK_PATH) violations.push({ path: req.path, error: 'not the catch hook path' });
    if (!/^application\/json\b/.test(String(req.headers['content-type']))) violations.push({ path: req.path, error: `content-type ${String(req.headers['content-type'])}` });
    try {
      const parsed = JSON.parse(req.body) as unknown;
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) violations.push({ path: req.path, error: 'the body is not a JSON object' });
    } catch {
      violations.push({ path: req.path, error: 'the body is not JSON' });
    }
    const step = steps.shift();
    return step ?? success();
  });

  return {
    hookUrl: `http://127.0.0.1:${buyer.port}${HOOK_PATH}`,
    requests: buyer.requests,
    ids,
    violations,
    script(next) {
      steps = [...next];
    },
    waitForRequests: (count, timeoutMs) => buyer.waitForRequests(count, timeoutMs),
    close: () => buyer.close(),
  };
}
