/**
 * Buyers (admin use cases): create, list, read (with its live endpoint count), change, archive.
 * A buyer still named by a live source's waterfall cannot be archived; archiving a buyer archives
 * its endpoints.
 */
import { z } from 'zod';
import { ConflictError } from '../../../shared/errors';
import { nameString, parseBody } from '../../../shared/http/validate';
import { newId } from '../../../shared/ids';
import type { BuyerDoc, Models } from '../../../shared/store';
import { LIVE, archive, archivedFilter, mustFind, updateLive } from './documents';

const buyerCreate = z.object({ name: nameString, accept: z.enum(['all', 'any']).optional() }).strict();
const buyerPatch = z.object({ name: nameString.optional(), accept: z.enum(['all', 'any']).optional() }).strict();

export function buyerView(doc: BuyerDoc, endpoints?: number) {
  return {
    id: doc._id,
    name: doc.name,
    accept: doc.accept,
    paused: doc.paused ?? false,
    ...(doc.paused && doc.pause ? { pause: doc.pause } : {}),
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
      const body = parseBody(buyerCreate, input);
      const doc = await models.Buyer.create({ _id: newId('buyer'), name: body.name, accept: body.accept ?? 'all' });
      return buyerView(doc.toObject());
    },

    async list(options: { archived?: unknown } = {}): Promise<BuyerView[]> {
      const docs = await models.Buyer.find(archivedFilter(options.archived)).sort({ createdAt: 1 }).limit(1000).lean<BuyerDoc[]>();
      return docs.map((d) => buyerView(d));
    },

    async get(buyerId: string): Promise<BuyerView> {
      const doc = await mustFind(models.Buyer.findById(buyerId).lean<BuyerDoc>(), 'Buyer');
      return buyerView(doc, await models.Endpoint.countDocuments({ buyerId, ...LIVE }));
    },

    async update(buyerId: string, input: unknown): Promise<BuyerView> {
      const body = parseBody(buyerPatch, input);
      return buyerView(await updateLive(models.Buyer, { _id: buyerId }, { $set: body }, 'Buyer'));
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
