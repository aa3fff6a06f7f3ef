/**
 * Buyers (admin use cases): create, list, read (with its live endpoint count), change, archive.
 * A buyer still named by a live source's waterfall cannot be archived; archiving a buyer archives
 * its endpoints.
 */
import { z } from 'zod';
import { BUYER_CONTROL_DEFAULTS, capacityKeys, windowBounds, type CAP_WINDOWS, type HoursWindow, type Schedule } from '../../../shared/buyer-controls';
import { buyerControlsSchema, capsSchema, scheduleSchema } from '../../../shared/buyer-controls-schema';
import { ConflictError } from '../../../shared/errors';
import { nameString, parseBody } from '../../../shared/http/validate';
import { newId } from '../../../shared/ids';
import type { BuyerDoc, Models } from '../../../shared/store';
import { LIVE, archive, archivedFilter, mustFind, updateLive } from './documents';

const buyerCreate = z.object({ name: nameString, accept: z.enum(['all', 'any']).optional(), ...buyerControlsSchema.shape }).strict();
/** A PATCH replaces each given field whole; `caps: null` / `schedule: null` remove them (no caps, always open). */
const buyerPatch = z
  .object({
    name: nameString.optional(),
    accept: z.enum(['all', 'any']).optional(),
    ...buyerControlsSchema.shape,
    caps: capsSchema.nullable().optional(),
    schedule: scheduleSchema.nullable().optional(),
  })
  .strict();

/** Leads taken so far in each window the buyer caps (and in the open schedule window when that has a cap). */
export type BuyerUsage = Partial<Record<(typeof CAP_WINDOWS)[number] | 'window', number>>;

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
  };
}

export function buyerView(doc: BuyerDoc, endpoints?: number, usage?: BuyerUsage) {
  return {
    id: doc._id,
    name: doc.name,
    accept: doc.accept,
    paused: doc.paused ?? false,
    ...(doc.paused && doc.pause ? { pause: doc.pause } : {}),
    ...controlsView(doc),
    ...(usage ? { usage } : {}),
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
    ...(doc.archivedAt ? { archivedAt: doc.archivedAt } : {}),
    ...(endpoints !== undefined ? { endpoints } : {}),
  };
}
export type BuyerView = ReturnType<typeof buyerView>;

export function createBuyerUseCases(deps: { models: Models }) {
  const { models } = deps;
  return {
    async create(input: unknown): Promise<BuyerView> {
      const body = withStoredSchedule(parseBody(buyerCreate, input));
      const doc = await models.Buyer.create({ ...body, _id: newId('buyer'), name: body.name, accept: body.accept ?? 'all' });
      return buyerView(doc.toObject());
    },

    async list(options: { archived?: unknown } = {}): Promise<BuyerView[]> {
      const docs = await models.Buyer.find(archivedFilter(options.archived)).sort({ createdAt: 1 }).limit(1000).lean<BuyerDoc[]>();
      return docs.map((d) => buyerView(d));
    },

    async get(buyerId: string): Promise<BuyerView> {
      const doc = await mustFind(models.Buyer.findById(buyerId).lean<BuyerDoc>(), 'Buyer');
      const windows = capacityKeys(doc, Date.now());
      const rows = windows.length ? await models.BuyerUsage.find({ buyerId, key: { $in: windows.map((w) => w.key) }, slot: { $gt: 0 } }, { key: 1 }).lean() : [];
      const usage: BuyerUsage = Object.fromEntries(windows.map((w) => [w.window, rows.filter((r) => r.key === w.key).length]));
      return buyerView(doc, await models.Endpoint.countDocuments({ buyerId, ...LIVE }), usage);
    },

    async update(buyerId: string, input: unknown): Promise<BuyerView> {
      const body = withStoredSchedule(parseBody(buyerPatch, input));
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
    },
  };
}
export type BuyerUseCases = ReturnType<typeof createBuyerUseCases>;
