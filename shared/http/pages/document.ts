/**
 * The HTML document every operator page is built in (the dispute pages, the console): the head
 * (charset, viewport, same-origin referrers, no favicon request, the inlined stylesheet — the CSP
 * allows inline styles, never scripts) and the base styles both share (colours, type, code blocks).
 */
import { html, trusted, type Part } from './html';

/** Colours, type and the elements every page uses; each app appends its own rules. */
export const BASE_STYLE = `
:root { --fg:#1d2430; --muted:#5b6472; --line:#d8dde5; --bg:#f6f7f9; --card:#fff; --ok:#1f7a3a; --ok-bg:#e7f5ec; --warn:#8a5a00; --warn-bg:#fff4dc; --bad:#b42318; --bad-bg:#fdecea; --info:#1f4f99; --info-bg:#e8f0fc; --skip:#596273; --skip-bg:#eef0f3; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
a { color:var(--info); }
code, pre, .mono, time { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:12.5px; }
pre { white-space:pre-wrap; word-break:break-all; background:#f3f4f6; border:1px solid var(--line); border-radius:4px; padding:6px 8px; margin:4px 0; max-height:28em; overflow:auto; }
`;

/** A whole page: `style` (a constant of the caller, never data) after the base styles; `head` for extra meta tags. */
export function htmlDocument(options: { title: string; style: string; body: Part; head?: Part; bodyClass?: string }): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
${options.head ?? ''}
<link rel="icon" href="data:,">
<title>${options.title}</title>
<style>${trusted(BASE_STYLE + options.style)}</style>
</head>
<body${options.bodyClass ? html` class="${options.bodyClass}"` : ''}>
${options.body}
</body>
</html>
`.value;
}
