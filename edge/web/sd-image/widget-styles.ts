// The widget's stylesheet, applied as a constructable stylesheet inside its shadow root (no inline styles).
export const WIDGET_CSS = [
  ':host{display:block;max-width:32rem;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f}',
  ':host([hidden]){display:none}',
  '.box{border:1px solid #d0d0d7;border-radius:10px;padding:12px;background:#fff}',
  'form{display:flex;gap:8px;align-items:stretch}',
  'textarea{flex:1;min-height:2.6em;resize:vertical;font:inherit;padding:6px 8px;border:1px solid #b8b8c2;border-radius:6px}',
  'button{font:inherit;font-weight:600;padding:0 14px;border:0;border-radius:6px;background:#3b5bdb;color:#fff;cursor:pointer}',
  'button[disabled]{background:#9aa5c9;cursor:not-allowed}',
  '.status{margin:8px 0 0;min-height:1.4em;color:#444}',
  'progress{display:block;width:100%;height:8px;margin-top:6px}',
  'progress[hidden],.error[hidden],figure[hidden]{display:none}',
  '.error{margin:8px 0 0;padding:8px 10px;border-radius:6px;background:#fff0f0;border:1px solid #f2b8b5;color:#8a1c1c}',
  'figure{margin:10px 0 0}',
  'img{display:block;max-width:100%;height:auto;border-radius:6px;background:#f3f3f6}',
].join('\n');
