/**
 * Actions that must not run twice from one form: creating a source, adding a source key and adding
 * an endpoint show a secret once, on the page the post answers, so that page is not a redirect and
 * a reload of it posts the form again. Their form (the confirmation page, or the endpoint form)
 * carries a one-time token (shared/store/form-tokens.ts); the action spends it before it acts, and
 * a second post of the same form is told so and changes nothing.
 */
import { randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import { html } from '../../../shared/http/pages/html';
import { isDuplicateKeyError, type Models } from '../../../shared/store';
import type { ConsoleContext } from './index';
import { formText, layout, type Section } from './layout';

/** How long a spent token is remembered: longer than any tab stays open on a shown key. */
export const FORM_TOKEN_TTL_MS = 30 * 24 * 3_600_000;
const TOKEN_RE = /^[A-Za-z0-9_-]{24}$/;

export function newFormToken(): string {
  return randomBytes(18).toString('base64url');
}

/** `fresh`: spent now, act. `spent`: this form was posted before. `missing`: no (or a malformed) token. */
export async function spendFormToken(models: Models, token: string, action: string): Promise<'fresh' | 'spent' | 'missing'> {
  if (!TOKEN_RE.test(token)) return 'missing';
  const now = new Date();
  try {
    await models.FormToken.create({ _id: token, action, spentAt: now });
  } catch (error) {
    if (isDuplicateKeyError(error)) return 'spent';
    throw error;
  }
  await models.FormToken.deleteMany({ spentAt: { $lt: new Date(now.getTime() - FORM_TOKEN_TTL_MS) } });
  return 'fresh';
}

/**
 * Spends the posted form's token (field `once`): true to act; false, with the page saying why,
 * when this form was sent before (409) or carries no valid token (400). `then` says what became of
 * the first post and its secret (whole sentences).
 */
export async function spendOnce(ctx: Pick<ConsoleContext, 'models' | 'signIn'>, req: Request, res: Response, options: { action: string; back: string; then: string; active: Section }): Promise<boolean> {
  const spent = await spendFormToken(ctx.models, formText(req.body, 'once'), options.action);
  if (spent === 'fresh') return true;
  const [status, title, message] = spent === 'spent'
    ? [409, 'Already done', html`This form was already sent (the page was reloaded or the button pressed twice), so nothing was done again. ${options.then}`]
    : [400, 'Form out of date', html`This form has no valid one-time token (it was made by an older page). Nothing was done; start again.`];
  ctx.signIn.sendHtml(res, status, layout({ title, active: options.active, body: html`<div class="card"><h1>${title}</h1><p class="error" role="alert" id="refusal">${message}</p><p><a href="${options.back}" id="back">Back</a></p></div>` }));
  return false;
}
