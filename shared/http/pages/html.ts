/**
 * HTML built from tagged templates: every interpolated value is escaped unless it is already
 * `Html` (built by this module). Lead fields, buyers' answers and headers are attacker-controlled;
 * there is no other way to put text into a page.
 */

export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

/** What a template accepts: text (escaped), numbers, markup built here, lists of those; nothing for null/undefined/false. */
export type Part = Html | string | number | boolean | null | undefined | readonly Part[];

function render(part: Part): string {
  if (part === null || part === undefined || part === false || part === true) return '';
  if (part instanceof Html) return part.value;
  if (Array.isArray(part)) return (part as readonly Part[]).map(render).join('');
  return escapeHtml(String(part));
}

export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0]!;
  values.forEach((value, i) => {
    out += render(value) + strings[i + 1]!;
  });
  return new Html(out);
}

/** Markup known to be safe (constants of this module's callers only: never data). */
export function trusted(markup: string): Html {
  return new Html(markup);
}

/** ISO 8601 in UTC with milliseconds, the one time format of the pages. */
export function iso(ms: number | Date | undefined | null): string {
  if (ms === undefined || ms === null) return '—';
  const date = ms instanceof Date ? ms : new Date(ms);
  return Number.isNaN(date.getTime()) ? '—' : date.toISOString();
}

export function time(ms: number | Date | undefined | null): Html {
  const text = iso(ms);
  return text === '—' ? html`—` : html`<time datetime="${text}">${text}</time>`;
}
