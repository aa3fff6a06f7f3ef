/**
 * The dispute pages' styles, inlined after the shared base styles (shared/http/pages/document.ts)
 * in a <style> block (allowed by the HTML CSP; a saved or printed page keeps its look). Outcome colours: success green, transient amber, permanent red.
 */
export const STYLE = `
header.nav { display:flex; gap:16px; align-items:center; padding:10px 24px; background:#1d2430; color:#fff; }
header.nav a { color:#fff; text-decoration:none; font-weight:600; }
header.nav form { margin:0; }
header.nav .search { flex:1; display:flex; gap:6px; }
header.nav input[type=search] { flex:1; max-width:420px; }
main { max-width:1100px; margin:0 auto; padding:20px 24px 48px; }
h1 { font-size:20px; margin:4px 0 12px; }
h2 { font-size:16px; margin:24px 0 8px; }
input, button { font:inherit; padding:6px 10px; border:1px solid var(--line); border-radius:4px; }
button { background:#2c3a4f; color:#fff; border-color:#2c3a4f; cursor:pointer; }
button.link { background:none; border:none; color:#fff; padding:0; text-decoration:underline; }
.card { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:14px 16px; margin:10px 0; }
.login { max-width:420px; margin:60px auto; }
.login input { width:100%; margin:6px 0 12px; }
.error { color:var(--bad); background:var(--bad-bg); border:1px solid #f3c3bd; border-radius:4px; padding:8px 10px; }
.notice { color:var(--muted); }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; vertical-align:top; padding:4px 8px; border-bottom:1px solid var(--line); }
th { color:var(--muted); font-weight:600; white-space:nowrap; }
table.kv th { width:200px; }
table.kv td { word-break:break-word; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; background:var(--skip-bg); color:var(--skip); }
.ok { color:var(--ok); } .bad { color:var(--bad); font-weight:600; }
.badge.success, .badge.delivered, .badge.accepted { background:var(--ok-bg); color:var(--ok); }
.badge.transient, .badge.failover, .badge.freshness, .badge.redeliver, .badge.delivering { background:var(--warn-bg); color:var(--warn); }
.badge.permanent, .badge.dead_lettered, .badge.discarded { background:var(--bad-bg); color:var(--bad); }
.badge.unknown, .badge.held { background:#ece4f7; color:#5b2c91; }
.badge.trying, .badge.intake, .badge.event { background:var(--info-bg); color:var(--info); }
.badge.approved { background:var(--bad-bg); color:var(--bad); } .badge.pending { background:var(--warn-bg); color:var(--warn); } .badge.denied, .badge.expired { background:var(--skip-bg); color:var(--skip); }
ol.timeline { list-style:none; padding:0; margin:0; }
ol.timeline > li { background:var(--card); border:1px solid var(--line); border-left:5px solid var(--skip); border-radius:6px; padding:10px 14px; margin:8px 0; break-inside:avoid; }
ol.timeline > li.success { border-left-color:var(--ok); }
ol.timeline > li.transient { border-left-color:#d99a00; }
ol.timeline > li.permanent { border-left-color:var(--bad); }
ol.timeline > li.unknown { border-left-color:#7a45b8; }
ol.timeline > li.intake, ol.timeline > li.event, ol.timeline > li.d-trying { border-left-color:var(--info); }
ol.timeline > li.d-accepted, ol.timeline > li.s-delivered { border-left-color:var(--ok); }
ol.timeline > li.d-failover, ol.timeline > li.d-freshness { border-left-color:#d99a00; }
ol.timeline > li.d-dead_lettered, ol.timeline > li.d-discarded, ol.timeline > li.s-dead_lettered { border-left-color:var(--bad); }
ol.timeline > li.r-approved { border-left-color:var(--bad); } ol.timeline > li.r-pending { border-left-color:#d99a00; }
.entry-head { display:flex; flex-wrap:wrap; gap:10px; align-items:baseline; }
.entry-head .when { margin-left:auto; color:var(--muted); }
.entry-head strong { font-size:14.5px; }
.cols { display:grid; grid-template-columns:1fr 1fr; gap:14px; margin-top:8px; }
.cols h3 { font-size:13px; margin:2px 0 4px; color:var(--muted); text-transform:uppercase; letter-spacing:.03em; }
.removed { color:var(--muted); font-style:italic; }
.chain.ok { color:var(--ok); font-weight:600; }
.chain.broken { color:var(--bad); font-weight:700; }
.print-only, .print-hint { display:none; }
.seq { color:var(--muted); font-size:12px; }
@media (max-width: 800px) { .cols { grid-template-columns:1fr; } }
@media print {
  body { background:#fff; font-size:11.5px; }
  header.nav, form, .no-print { display:none !important; }
  .print-only { display:block; }
  body.print .print-hint { display:none !important; }
  main { max-width:none; padding:0; }
  .card, ol.timeline > li { border-color:#bbb; }
  pre { max-height:none; overflow:visible; }
  a { color:inherit; text-decoration:none; }
}
body.print header.nav, body.print form, body.print .no-print { display:none !important; }
body.print .print-only { display:block; }
@media screen { body.print .print-hint { display:block; } }
body.print pre { max-height:none; }
`;
