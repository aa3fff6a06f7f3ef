/**
 * Property-based fuzzing of intake (fast-check): 10,000 generated bodies and headers, mostly
 * wrong in some way. Whatever comes in: never a 5xx, never a crash, the answer is the one the
 * contract gives for that input, and a workflow exists only for what was accepted.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { leadSchema } from '../../shared/lead';
import { eventually, startSystem, type TestSystem } from '../support/system';

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);

describe(`intake fuzzing (${RUNS} requests)`, function () {
  let system: TestSystem;
  let source: { id: string; apiKey: string };
  before(async function () {
    this.timeout(180_000);
    system = await startSystem({ deliveryWorker: false, bodyLimit: '16kb' });
    source = await system.createSource('fuzz');
  });
  after(async () => {
    await system?.stop();
  });

  const text = fc.string({ unit: 'grapheme', maxLength: 40 });
  const simpleEmail = fc.tuple(fc.stringMatching(/^[a-z0-9._-]{1,12}$/), fc.stringMatching(/^[a-z0-9-]{1,12}$/)).map(([user, host]) => `${user}@${host}.example`);
  const validLead = fc.record(
    {
      email: simpleEmail,
      first_name: fc.string({ minLength: 1, maxLength: 20 }).filter((s) => s.trim().length > 0),
      phone: fc.constantFrom('+15550100000', '(555) 010-0000', '+44 20 7946 0958'),
      country: fc.constantFrom('US', 'GB'),
      custom: fc.dictionary(fc.stringMatching(/^[a-z_]{1,10}$/), fc.oneof(fc.integer(), fc.boolean(), fc.string({ maxLength: 20 })), { maxKeys: 3 }),
    },
    { requiredKeys: ['email'] },
  );
  const nearlyLead = fc.record(
    {
      email: fc.oneof(fc.emailAddress(), text, fc.integer(), fc.constant({ $gt: '' }), fc.constant(null)),
      phone: fc.oneof(text, fc.constant('+15550100000'), fc.integer()),
      first_name: fc.oneof(text, fc.constant(''), fc.string({ minLength: 101, maxLength: 120 })),
      country: fc.oneof(fc.constant('usa'), fc.constant('US'), text),
      ip: fc.oneof(fc.ipV4(), fc.ipV6(), text),
      dob: fc.oneof(fc.constant('1990-02-30'), fc.constant('1990-02-03'), text),
      consent: fc.oneof(fc.record({ granted: fc.boolean() }), fc.record({ granted: text }), fc.constant('yes')),
      custom: fc.oneof(fc.dictionary(text, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }), fc.constant([])),
      frist_name: text,
      id: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/), text),
      __proto__: fc.constant({ polluted: true }),
    },
    { requiredKeys: [] },
  );
  const body = fc.oneof(
    { weight: 1, arbitrary: validLead.map((b) => JSON.stringify(b)) },
    { weight: 4, arbitrary: nearlyLead.map((b) => JSON.stringify(b)) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.constantFrom('{', '{"email":', 'null', '[]', '""', '{"email":"a@b.co"}'.repeat(2), '\u0000', 'x'.repeat(20_000)) },
  );
  const request = fc.record({
    body,
    contentType: fc.oneof({ weight: 6, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: fc.constantFrom('application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/jsonx', '') }, { weight: 1, arbitrary: fc.stringMatching(/^[a-z/+.-]{0,30}$/) }),
    auth: fc.oneof({ weight: 8, arbitrary: fc.constant('valid') }, { weight: 1, arbitrary: fc.constantFrom('none', 'garbage', 'basic', 'lds_forged') }),
    idempotencyKey: fc.option(fc.oneof(fc.stringMatching(/^[!-~]{1,40}$/), fc.stringMatching(/^[!-~]{256,300}$/), fc.constant('has space')), { nil: undefined }),
  });

  /** What the contract says this request gets: 2xx, or the 4xx class. */
  type GeneratedRequest = typeof request extends fc.Arbitrary<infer T> ? T : never;
  function expected(req: GeneratedRequest): '2xx' | 401 | 413 | 415 | 400 {
    if (req.auth !== 'valid') return 401;
    const ct = req.contentType.toLowerCase();
    // An empty body has no media type to refuse: it is simply not a lead (400).
    if (req.body !== '' && !(ct === 'application/json' || ct.startsWith('application/json;'))) return 415;
    if (Buffer.byteLength(req.body) > 16 * 1024) return 413;
    let parsed: unknown;
    try {
      parsed = JSON.parse(req.body);
    } catch {
      return 400;
    }
    if (req.idempotencyKey !== undefined && !/^[\x21-\x7e]{1,255}$/.test(req.idempotencyKey)) return 400;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return 400;
    return leadSchema.safeParse(parsed).success ? '2xx' : 400;
  }

  it('When 10,000 generated requests hit intake, then none gets a 5xx, each gets its contract answer, and only accepted leads have workflows', async function () {
    this.timeout(900_000);
    const accepted = new Set<string>();
    const counts: Record<string, number> = {};
    const authHeader = (auth: string) =>
      auth === 'valid' ? `Bearer ${source.apiKey}` : auth === 'garbage' ? 'Bearer garbage' : auth === 'basic' ? 'Basic dXNlcjpwYXNz' : auth === 'lds_forged' ? `Bearer lds_${'0'.repeat(26)}_${'A'.repeat(43)}` : undefined;
    await fc.assert(
      fc.asyncProperty(request, async (req) => {
        const headers: Record<string, string> = {};
        const auth = authHeader(req.auth);
        if (auth) headers.authorization = auth;
        if (req.contentType) headers['content-type'] = req.contentType;
        if (req.idempotencyKey !== undefined) headers['idempotency-key'] = req.idempotencyKey;
        const res = await fetch(`${system.intakeUrl}/v1/leads`, { method: 'POST', headers, body: req.body });
        const answer = (await res.json()) as { leadId?: string; error?: string };
        counts[res.status] = (counts[res.status] ?? 0) + 1;
        assert.ok(res.status < 500, `5xx for ${JSON.stringify(req).slice(0, 300)}: ${JSON.stringify(answer)}`);
        const want = expected(req);
        if (res.status === 409) return; // the same id / Idempotency-Key reused with other fields
        if (want === '2xx') {
          assert.ok(res.status === 202 || res.status === 200, `expected 2xx, got ${res.status} ${JSON.stringify(answer)} for ${req.body.slice(0, 200)}`);
          accepted.add(answer.leadId!);
        } else {
          assert.equal(res.status, want, `expected ${want} for ${JSON.stringify(req).slice(0, 300)}, got ${JSON.stringify(answer)}`);
          assert.equal(answer.leadId, undefined);
        }
      }),
      { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? 20261128), endOnFailure: true },
    );
    console.log(`      answers: ${JSON.stringify(counts)}; ${accepted.size} distinct leads accepted`);
    assert.ok(accepted.size > 0 && accepted.size < RUNS / 2, 'the generator produced both valid and invalid input');
    await eventually(async () => {
      const n = await system.client.workflow.count(`SourceId = "${source.id}"`);
      return n.count === accepted.size ? true : undefined;
    }, 60_000, `exactly ${accepted.size} workflows for the fuzzed source`);
  });
});
