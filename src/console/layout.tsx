import { createHash } from 'node:crypto';
import type { Child, FC, PropsWithChildren } from 'hono/jsx';
import { raw } from 'hono/html';
import { formatDuration, formatInstant, formatRelative } from './format.js';

/** The console's whole stylesheet. Inline, and allowed by its hash in the CSP (no 'unsafe-inline'). */
export const CONSOLE_CSS = `
:root { --fg:#1d2330; --muted:#687386; --line:#e3e7ee; --bg:#f6f8fb; --card:#fff; --accent:#2f5bd3;
  --ok:#1d7a46; --ok-bg:#e3f5ea; --warn:#8a5a00; --warn-bg:#fff3d6; --bad:#b42318; --bad-bg:#fde8e6; --info:#1f5fa8; --info-bg:#e6f0fb; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; align-items:center; gap:24px; padding:10px 24px; background:#1d2330; color:#fff; }
header .brand { font-weight:600; letter-spacing:.02em; }
header nav { display:flex; gap:4px; flex:1; }
header nav a { color:#c9d3e6; text-decoration:none; padding:6px 10px; border-radius:6px; }
header nav a:hover { background:#2c3546; color:#fff; }
header nav a.active { background:#3a4660; color:#fff; }
header form { margin:0; }
header button { background:transparent; color:#c9d3e6; border:1px solid #4a5670; border-radius:6px; padding:5px 10px; cursor:pointer; }
main { max-width:1280px; margin:0 auto; padding:20px 24px 48px; }
h1 { font-size:20px; margin:4px 0 16px; }
h2 { font-size:16px; margin:28px 0 10px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:16px; }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(220px,1fr)); gap:12px; }
.stat .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.stat .value { font-size:22px; font-weight:600; margin-top:2px; }
table { width:100%; border-collapse:collapse; background:var(--card); border:1px solid var(--line); border-radius:10px; overflow:hidden; }
th, td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
td { overflow-wrap:anywhere; }
th { background:#eef1f6; font-weight:600; font-size:12px; color:#3b4455; text-transform:uppercase; letter-spacing:.03em; }
tr:last-child td { border-bottom:none; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
code, .mono { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12.5px; }
a { color:var(--accent); }
.muted { color:var(--muted); }
.small { font-size:12px; }
.badge { display:inline-block; padding:1px 8px; border-radius:999px; font-size:12px; font-weight:600; white-space:nowrap; }
.tone-ok { background:var(--ok-bg); color:var(--ok); }
.tone-warn { background:var(--warn-bg); color:var(--warn); }
.tone-bad { background:var(--bad-bg); color:var(--bad); }
.tone-info { background:var(--info-bg); color:var(--info); }
.tone-none { background:#eceff4; color:#4a5363; }
.tone-text-ok { color:var(--ok); } .tone-text-warn { color:var(--warn); } .tone-text-bad { color:var(--bad); }
form.inline { display:inline-block; margin:4px 0 0; }
.kind { font-size:11px; font-weight:700; text-transform:uppercase; letter-spacing:.05em; }
.kind-receipt { color:#7a3db8; } .kind-transition { color:var(--info); } .kind-event { color:var(--ok); } .kind-delivery { color:var(--warn); }
form.search { display:flex; flex-wrap:wrap; gap:8px; align-items:end; margin-bottom:16px; }
label { display:flex; flex-direction:column; gap:3px; font-size:12px; color:var(--muted); }
input, select { font:inherit; padding:6px 8px; border:1px solid #c8cfdb; border-radius:6px; background:#fff; color:var(--fg); }
button.primary, button.action { font:inherit; padding:6px 14px; border-radius:6px; border:1px solid var(--accent); background:var(--accent); color:#fff; cursor:pointer; }
button.action { padding:3px 10px; font-size:12px; white-space:nowrap; }
time .mono { white-space:nowrap; }
td time > .muted { display:block; }
.notice { padding:10px 14px; border-radius:8px; margin-bottom:16px; }
.pager { display:flex; gap:12px; margin-top:12px; }
dl.facts { display:grid; grid-template-columns:max-content 1fr max-content 1fr; gap:6px 16px; margin:0; }
dl.facts dt { color:var(--muted); }
dl.facts dd { margin:0; }
ul.plain { list-style:none; margin:0; padding:0; }
ul.plain li { margin:2px 0; }
.signin { max-width:380px; margin:12vh auto; }
.signin form { display:flex; flex-direction:column; gap:12px; }
.chart svg { width:100%; height:auto; display:block; }
.legend { display:flex; gap:16px; flex-wrap:wrap; margin-top:8px; font-size:12px; }
.swatch { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:5px; vertical-align:-1px; }
.scroll { overflow-x:auto; max-width:100%; }
a.card.link { display:block; color:inherit; text-decoration:none; }
a.card.link:hover { border-color:var(--accent); }
.spaced { margin-top:12px; }
.actions { margin-top:12px; display:flex; gap:8px; flex-wrap:wrap; }
.sw-processed { background:#2f9e63; } .sw-ignored { background:#9aa5b8; } .sw-pending { background:#e0a100; } .sw-failed { background:#d64535; } .sw-other { background:#6b5bd6; }
/* No mid-word breaks in labels: only cells with ids and errors may break anywhere. */
th, .kind, .stat .label, .badge, label { overflow-wrap:normal; word-break:normal; hyphens:none; }
.toolbar { display:flex; flex-wrap:wrap; gap:6px 16px; align-items:center; margin:0 0 12px; font-size:12px; color:var(--muted); }
.toolbar a.on { font-weight:700; color:var(--fg); text-decoration:none; }
@media (prefers-color-scheme: dark) {
  :root { --fg:#e3e8f2; --muted:#9aa6ba; --line:#2f3746; --bg:#12161d; --card:#1a1f29; --accent:#7aa2ff;
    --ok:#6fd49b; --ok-bg:#183626; --warn:#f2c35b; --warn-bg:#3a2f12; --bad:#ff8a80; --bad-bg:#401d1b; --info:#8cbcf5; --info-bg:#182c44; }
  th { background:#222938; color:#c3cbda; }
  input, select { background:#12161d; border-color:#3a4456; }
  .tone-none { background:#2a3140; color:#c3cbda; }
  header { background:#0b0e13; }
}
/* Narrow screens: the header wraps, facts stack, and every table scrolls inside itself. */
@media (max-width: 760px) {
  header { flex-wrap:wrap; gap:8px; padding:8px 12px; }
  header nav { flex-wrap:wrap; flex-basis:100%; order:3; }
  time .mono { white-space:normal; }
  main { padding:14px 12px 32px; }
  table { display:block; overflow-x:auto; max-width:100%; }
  /* The table scrolls, so its cells need not break words to fit. */
  td { overflow-wrap:break-word; }
  dl.facts { grid-template-columns:minmax(0,max-content) minmax(0,1fr); }
  dl.facts dd { min-width:0; overflow-wrap:anywhere; }
  h1, .pager, .notice { overflow-wrap:anywhere; }
  .grid { grid-template-columns:repeat(auto-fill,minmax(150px,1fr)); }
}
`;

export const CONSOLE_CSS_HASH = `sha256-${createHash('sha256').update(CONSOLE_CSS).digest('base64')}`;

export type NavKey = 'overview' | 'payments' | 'receipts' | 'pollers' | 'accounts' | 'outbox' | 'bank' | 'audit';

const NAV: Array<[NavKey, string, string]> = [
  ['overview', 'Overview', '/console'],
  ['payments', 'Payments', '/console/payments'],
  ['receipts', 'Receipts', '/console/receipts'],
  ['pollers', 'Pollers', '/console/pollers'],
  ['accounts', 'Accounts', '/console/accounts'],
  ['outbox', 'Outbox & sinks', '/console/outbox'],
  ['bank', 'Bank feeds', '/console/bank'],
  ['audit', 'Audit', '/console/audit'],
];

/**
 * `refreshSeconds`: the page reloads itself that often (a meta refresh: no script, so the
 * CSP stays as strict).
 */
export const Layout: FC<PropsWithChildren<{ title: string; nav?: NavKey | null; signedIn: boolean; refreshSeconds?: number }>> = ({ title, nav, signedIn, refreshSeconds, children }) => (
  <>
    {raw('<!doctype html>')}
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="same-origin" />
        <meta name="color-scheme" content="light dark" />
        {refreshSeconds ? <meta http-equiv="refresh" content={String(refreshSeconds)} /> : null}
        <link rel="icon" href="data:," />
        <title>{`${title} · Gateway console`}</title>
        <style dangerouslySetInnerHTML={{ __html: CONSOLE_CSS }} />
      </head>
      <body>
        <header>
          <span class="brand">Payment gateway · console</span>
          {signedIn ? (
            <>
              <nav>
                {NAV.map(([key, label, href]) => (
                  <a href={href} class={key === nav ? 'active' : undefined}>
                    {label}
                  </a>
                ))}
              </nav>
              <form method="post" action="/console/sign-out">
                <button type="submit">Sign out</button>
              </form>
            </>
          ) : null}
        </header>
        <main>{children}</main>
      </body>
    </html>
  </>
);

/** An instant in UTC with its distance from now; the exact ISO value in the tooltip. */
export const Instant: FC<{ value: Date | null | undefined; now: Date; empty?: string }> = ({ value, now, empty }) =>
  value ? (
    <time datetime={value.toISOString()} title={value.toISOString()}>
      <span class="mono">{formatInstant(value)}</span> <span class="muted small">({formatRelative(value, now)})</span>
    </time>
  ) : (
    <span class="muted">{empty ?? '—'}</span>
  );

export const Duration: FC<{ from: Date | null | undefined; to: Date | null | undefined }> = ({ from, to }) =>
  from && to ? <span class="mono">{formatDuration(to.getTime() - from.getTime())}</span> : <span class="muted">—</span>;

export type Tone = 'ok' | 'warn' | 'bad' | 'info' | 'none';

const STATUS_TONES: Record<string, Tone> = {
  paid: 'ok',
  authorized: 'info',
  open: 'none',
  pending: 'warn',
  canceled: 'none',
  expired: 'none',
  failed: 'bad',
  charged_back: 'bad',
  // receipts
  processed: 'ok',
  ignored: 'none',
  // deliveries
  delivered: 'ok',
  dead: 'bad',
  // pollers
  healthy: 'ok',
  degraded: 'bad',
};

export const Badge: FC<{ value: string | null; tone?: Tone }> = ({ value, tone }) => (
  <span class={`badge tone-${tone ?? STATUS_TONES[value ?? ''] ?? 'none'}`}>{value ?? 'unknown'}</span>
);

/** The one row of a table that has none: a muted message across every column. */
export const EmptyRow: FC<{ cols: number; children?: Child }> = ({ cols, children }) => (
  <tr>
    <td colspan={cols} class="muted">
      {children}
    </td>
  </tr>
);

export const Notice: FC<{ tone: Tone; children?: Child }> = ({ tone, children }) => (
  <div class={`notice tone-${tone}`} role="status">
    {children}
  </div>
);
