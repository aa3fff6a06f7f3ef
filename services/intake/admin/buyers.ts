/**
 * Buyers (admin use cases): create, list, read (with its live endpoint count and its returns
 * counted per status), change, archive, issue and revoke its API keys (the buyer API: returns).
 * A buyer still named by a live source's waterfall cannot be archived; archiving a buyer archives
 * its endpoints and stops its keys.
 */
import { z } from 'zod';
import { BUYER_CONTROL_DEFAULTS, capacityKeys, windowBounds, type CAP_WINDOWS, type HoursWindow, type Schedule } from '../../../shared/buyer-controls';
import { buyerControlsSchema, capsSchema, scheduleSchema } from '../../../shared/buyer-controls-schema';
import { ConflictError, ValidationError } from '../../../shared/errors';
import { nameString, parseBody } from '../../../shared/http/validate';
import { newId } from '../../../shared/ids';
import type { BuyerAuth } from '../../../shared/http/auth';
import type { BuyerDoc, Models } from '../../../shared/store';
import { returnCounts, type ReturnCounts } from '../returns';
import { LIVE, archive, archivedFilter, mustFind, updateLive } from './documents';
import { issueKey, keysView, revokeKey } from './keys';

const buyerCreate = z.object({ name: nameString, accept: z.enum(['all', 'any']).optional(), ...buyerControlsSchema.shape }).strict();
/** A PATCH replaces each given field whole; `caps: null` / `schedule: null` remove them (no caps, always open). */
const buyerPatch = z
  .object({
    name: nameString.optional(),
    accept: z.enum(['all', 'any']).optional(),
    ...buyerControlsSchema.shape,
    caps: capsSchema.nullable().optional(),
    schedule: scheduleSchema.nullable().optional(),
    sourceCaps: buyerControlsSchema.shape.sourceCaps.unwrap().nullable().optional(),
    capWarning: buyerControlsSchema.shape.capWarning.unwrap().nullable().optional(),
  })
  .strict();

/** Every source a buyer's `sourceCaps` names must exist (400 on `sourceCaps.<id>` otherwise). */
async function checkSourceCaps(models: Models, sourceCaps: Record<string, unknown> | null | undefined): Promise<void> {
  const ids = Object.keys(sourceCaps ?? {});
  if (!ids.length) return;
  const found = new Set((await models.Source.find({ _id: { $in: ids } }, { _id: 1 }).lean()).map((d) => String(d._id)));
  const missing = ids.filter((id) => !found.has(id));
  if (missing.length) throw new ValidationError(missing.map((id) => ({ path: `sourceCaps.${id}`, message: `source ${id} does not exist` })));
}

/** Leads taken so far in each window the buyer caps (and in the open schedule window when that has a cap). */
export type BuyerUsage = Partial<Record<(typeof CAP_WINDOWS)[number] | 'window', number>> & { bySource?: Record<string, Partial<Record<(typeof CAP_WINDOWS)[number], number>>> };

/**
 * Schedules are stored with every window in its object form ({from, to, cap?}): FerretDB stores no
 * nested arrays. They are shown as given: a window without a cap as the pair ["08:00", "20:00"].
 */
function storedSchedule(schedule: Schedule): Schedule {
  const hours = Object.fromEntries(Object.entries(schedule.hours).map(([day, windows]: [string, HoursWindow[] | undefined]) => [day, (windows ?? []).map(windowBounds)]));
  return { ...schedule, hours };
}

function shownSchedule(schedule: Schedule): Schedule {
  const hours = Object.fromEntries(
    Object.entries(schedule.hours).map(([day, windows]: [string, HoursWindow[] | undefined]) => [day, (windows ?? []).map((w): HoursWindow => {
      const { from, to, cap } = windowBounds(w);
      return cap === undefined ? ([from, to] as [string, string]) : { from, to, cap };
    })]),
  );
  return { ...schedule, hours };
}

function withStoredSchedule<T extends { schedule?: Schedule | null }>(body: T): T {
  return body.schedule ? { ...body, schedule: storedSchedule(body.schedule) } : body;
}

function controlsView(doc: BuyerDoc) {
  return {
    timeZone: doc.timeZone ?? BUYER_CONTROL_DEFAULTS.timeZone,
    caps: doc.caps ?? {},
    ...(doc.schedule ? { schedule: { holidays: [], outside: BUYER_CONTROL_DEFAULTS.outside, ...shownSchedule(doc.schedule) } } : {}),
    duplicateWindow: doc.duplicateWindow ?? BUYER_CONTROL_DEFAULTS.duplicateWindow,
    returnWindow: doc.returnWindow ?? BUYER_CONTROL_DEFAULTS.returnWindow,
    sourceCaps: doc.sourceCaps ?? {},
    ...(doc.capWarning !== undefined ? { capWarning: doc.capWarning } : {}),
  };
}

export function buyerView(doc: BuyerDoc, endpoints?: number, usage?: BuyerUsage, returns?: ReturnCounts) {
  return {
    id: doc._id,
    name: doc.name,
    accept: doc.accept,
    paused: doc.paused ?? false,
    ...(doc.paused && doc.pause ? { pause: doc.pause } : {}),
    ...controlsView(doc),
    ...(usage ? { usage } : {}),
    ...(returns ? { returns } : {}),
    keys: keysView(doc.keys),
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
    ...(doc.archivedAt ? { archivedAt: doc.archivedAt } : {}),
    ...(endpoints !== undefined ? { endpoints } : {}),
  };
}
export type BuyerView = ReturnType<typeof buyerView>;

export function createBuyerUseCases(deps: { models: Models; /** Buyer keys' cache: told when keys change here. */ buyerKeys?: BuyerAuth }) {
  const { models } = deps;
  return {
    async create(input: unknown): Promise<BuyerView> {
      const body = withStoredSchedule(parseBody(buyerCreate, input));
      await checkSourceCaps(models, body.sourceCaps);
      const doc = await models.Buyer.create({ ...body, _id: newId('buyer'), name: body.name, accept: body.accept ?? 'all' });
      return buyerView(doc.toObject());
    },

    async list(options: { archived?: unknown } = {}): Promise<BuyerView[]> {
      const docs = await models.Buyer.find(archivedFilter(options.archived)).sort({ createdAt: 1 }).limit(1000).lean<BuyerDoc[]>();
      return docs.map((d) => buyerView(d));
    },

    async get(buyerId: string): Promise<BuyerView> {
      const doc = await mustFind(models.Buyer.findById(buyerId).lean<BuyerDoc>(), 'Buyer');
      const now = Date.now();
      const own = { ...(doc.timeZone ? { timeZone: doc.timeZone } : {}), ...(doc.caps ? { caps: doc.caps } : {}), ...(doc.schedule ? { schedule: doc.schedule } : {}) };
      const windows = capacityKeys(own, now);
      const bySource = Object.entries(doc.sourceCaps ?? {}).map(([sourceId, caps]) => ({ sourceId, windows: capacityKeys({ ...(doc.timeZone ? { timeZone: doc.timeZone } : {}), sourceCaps: { sourceId, caps } }, now) }));
      const allKeys = [...windows, ...bySource.flatMap((s) => s.windows)].map((w) => w.key);
      const rows = allKeys.length ? await models.BuyerUsage.find({ buyerId, key: { $in: allKeys }, slot: { $gt: 0 } }, { key: 1 }).lean() : [];
      const count = (key: string) => rows.filter((r) => r.key === key).length;
      const usage: BuyerUsage = Object.fromEntries(windows.map((w) => [w.window, count(w.key)]));
      if (bySource.length) usage.bySource = Object.fromEntries(bySource.map((s) => [s.sourceId, Object.fromEntries(s.windows.map((w) => [w.window, count(w.key)]))]));
      const [endpoints, returns] = await Promise.all([models.Endpoint.countDocuments({ buyerId, ...LIVE }), returnCounts(models, { buyerId })]);
      return buyerView(doc, endpoints, usage, returns);
    },

    async update(buyerId: string, input: unknown): Promise<BuyerView> {
      const body = withStoredSchedule(parseBody(buyerPatch, input));
      await checkSourceCaps(models, body.sourceCaps);
      const set = Object.fromEntries(Object.entries(body).filter(([, v]) => v !== null));
      const unset = Object.fromEntries(Object.entries(body).filter(([, v]) => v === null).map(([k]) => [k, '']));
      return buyerView(await updateLive(models.Buyer, { _id: buyerId }, { $set: set, ...(Object.keys(unset).length ? { $unset: unset } : {}) }, 'Buyer'));
    },

    async archive(buyerId: string): Promise<void> {
      // Archived sources take no new leads (and cannot be changed): their waterfalls do not hold a buyer.
      const users = await models.Source.find({ waterfall: buyerId, ...LIVE }, { _id: 1 }).lean();
      if (users.length) throw new ConflictError('buyer_in_use', 'Remove the buyer from these waterfalls first.', { sources: users.map((s) => s._id) });
      const at = new Date();
      await archive(models.Buyer, { _id: buyerId }, 'Buyer', at);
      await models.Endpoint.updateMany({ buyerId, ...LIVE }, { $set: { archivedAt: at } });
      // Its keys stop authenticating: at once in this process, within the key cache (5 s) elsewhere.
      deps.buyerKeys?.invalidate(buyerId);
    },

    /** A key of the buyer API (`ldb_…`), shown this once; the buyer's other keys stay valid until revoked. */
    async addKey(buyerId: string): Promise<{ keyId: string; apiKey: string }> {
      return issueKey(models.Buyer, buyerId, 'buyer', 'Buyer');
    },

    async revokeKey(buyerId: string, keyId: string): Promise<void> {
      await revokeKey(models.Buyer, buyerId, keyId, 'Buyer');
      deps.buyerKeys?.invalidate(buyerId);
    },
  };
}
export type BuyerUseCases = ReturnType<typeof createBuyerUseCases>;
