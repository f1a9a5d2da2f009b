// mosparo-lb status page: polls GET status every 2 s and renders it; the
// node buttons POST nodes/{name}/{action}. No framework, no build step:
// the file is embedded in the binary as is. Everything from /status is
// inserted with textContent, never as HTML, because node names and reasons
// can come from Consul or from the nodes themselves.
'use strict';

(function () {
  const REFRESH_MS = 2000;
  const TOKEN_KEY = 'mosparo-lb-admin-token';
  const CSRF_HEADER = 'X-MosparoLB-CSRF';
  const csrf = meta('mosparo-lb-csrf');
  const tokenRequired = meta('mosparo-lb-token-required') === 'true';
  // The operator actions of POST nodes/{name}/{action}; drain and
  // maintenance ask first because a mistap on a phone takes a node out.
  const ACTIONS = [
    { action: 'drain', label: 'Drain', confirm: 'Drain node %s? It gets no new requests; requests in flight finish.' },
    { action: 'maintenance', label: 'Maintenance', confirm: 'Put node %s into maintenance? It gets no requests at all.' },
    { action: 'ready', label: 'Ready', confirm: '' },
  ];
  const SECTION_ORDER = ['vrrp', 'acme', 'css_cache', 'caches', 'cron', 'versions', 'discovery'];
  const TITLES = { vrrp: 'VRRP', css_cache: 'CSS cache', caches: 'Caches', cron: 'Web cron', acme: 'Certificates (ACME)', discovery: 'Discovery', reloads: 'Reloads' };

  // The charts of /status "history": one per metric and dimension, one
  // line per node or route class.
  const CHARTS = [
    { metric: 'rps', title: 'Requests/s', unit: '/s' },
    { metric: 'p99_ms', title: 'p99 latency', unit: ' ms' },
    { metric: 'errors_per_s', title: 'Errors/s (5xx)', unit: '/s' },
  ];
  const DIMENSIONS = [{ key: 'nodes', title: 'by node' }, { key: 'classes', title: 'by route class' }];
  const MAX_EVENTS = 50;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  let timer = 0;
  let unreachable = false;
  let messageTimer = 0;

  function meta(name) {
    const m = document.querySelector('meta[name="' + name + '"]');
    return m ? m.content : '';
  }
  function $(id) { return document.getElementById(id); }

  // el builds an element; children are nodes or strings (as text).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k.startsWith('data-')) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  // sessionStorage can be unavailable (privacy modes); the page then asks again.
  function getToken() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }
  function setToken(v) {
    try {
      if (v) sessionStorage.setItem(TOKEN_KEY, v); else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* kept nowhere: asked again next time */ }
  }

  function showMessage(text, isError) {
    const m = $('message');
    clearTimeout(messageTimer);
    m.textContent = text;
    m.className = isError ? 'error' : '';
    m.hidden = false;
    if (!isError) messageTimer = setTimeout(() => { m.hidden = true; }, 6000);
  }
  function hideMessage() { $('message').hidden = true; }

  function showTokenForm(why) {
    $('token-form').hidden = false;
    if (why) showMessage(why, true);
    $('token-input').focus();
  }

  // ---- formatting ----------------------------------------------------

  const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/;

  function fmtDuration(ns) {
    if (typeof ns !== 'number') return '—';
    const ms = ns / 1e6;
    if (ms < 1) return ms.toFixed(2) + ' ms';
    if (ms < 1000) return ms.toFixed(ms < 10 ? 1 : 0) + ' ms';
    const s = ms / 1000;
    return s < 120 ? s.toFixed(1) + ' s' : Math.round(s / 60) + ' min';
  }

  function fmtTime(iso) {
    const t = new Date(iso);
    if (isNaN(t)) return iso;
    const d = Math.round((t.getTime() - Date.now()) / 1000);
    const rel = Math.abs(d) < 1 ? 'now' : d < 0 ? ago(-d) + ' ago' : 'in ' + ago(d);
    return t.toLocaleTimeString() + ' (' + rel + ')';
  }
  function ago(s) {
    if (s < 90) return s + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    if (s < 172800) return Math.round(s / 3600) + ' h';
    return Math.round(s / 86400) + ' d';
  }

  function isObject(v) { return v !== null && typeof v === 'object' && !Array.isArray(v); }
  function isScalar(v) { return v === null || typeof v !== 'object'; }

  function humanize(key) {
    if (TITLES[key]) return TITLES[key];
    const s = key.replace(/_ns$/, '').replace(/_/g, ' ');
    return s.charAt(0).toUpperCase() + s.slice(1);
  }

  // badge colours a state by its name (see status.css); cls overrides it.
  function badge(v, cls) {
    const s = String(v);
    return el('span', { class: 'badge ' + (cls || s.toLowerCase().replace(/[^a-z0-9_-]/g, '_')) }, s);
  }

  // scalar renders one value, choosing a format from its key and type.
  function scalar(key, v) {
    if (v === null || v === undefined || v === '') return '—';
    if (typeof v === 'boolean') {
      // Red only where false is bad news (healthy: false), not for flags
      // such as consul: false.
      const judged = /(^|_)(ok|healthy|up|reachable|connected|runner)$/.test(key);
      return badge(v ? 'yes' : 'no', judged ? (v ? 'ok' : 'error') : 'flag');
    }
    if (typeof v === 'number') {
      if (/_ns$/.test(key)) return fmtDuration(v);
      if (/progress$/.test(key)) return Math.round(v * 100) + ' %';
      return v.toLocaleString();
    }
    if (typeof v === 'string') {
      if (/(^|_)(state|status|role|health|breaker|outcome)$/.test(key)) return badge(v);
      if (ISO_TIME.test(v)) return fmtTime(v);
    }
    return String(v);
  }
  // value renders anything /status may contain.
  function value(key, v, depth) {
    if (Array.isArray(v)) {
      if (v.length === 0) return 'none';
      if (v.every(isObject)) return table(v, depth + 1);
      if (v.every(isScalar)) return v.map((x) => String(x)).join(', ');
    }
    if (isObject(v)) return depth > 4 ? JSON.stringify(v) : list(v, depth + 1);
    return scalar(key, v);
  }

  function list(obj, depth) {
    const dl = el('dl');
    for (const [k, v] of Object.entries(obj)) dl.append(el('dt', null, humanize(k)), el('dd', null, value(k, v, depth)));
    return dl;
  }

  function table(rows, depth) {
    const keys = [];
    for (const r of rows) for (const k of Object.keys(r)) if (!keys.includes(k)) keys.push(k);
    const head = el('tr', null, keys.map((k) => el('th', null, humanize(k))));
    const body = rows.map((r) => el('tr', null, keys.map((k, i) =>
      el('td', { class: i === 0 ? 'name' : '', 'data-label': humanize(k) }, value(k, r[k], depth)))));
    return el('table', { class: 'cards' }, el('thead', null, head), el('tbody', null, body));
  }

  // ---- charts and events ---------------------------------------------

  // svg builds an SVG element; attributes only (no style: the CSP forbids
  // inline styles, colours come from status.css classes).
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  // niceMax rounds a chart's top up to 1, 2 or 5 times a power of ten.
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  function fmtValue(v, unit) {
    if (typeof v !== 'number') return '—';
    const s = Number.isInteger(v) || v >= 100 ? Math.round(v).toLocaleString() : v >= 10 ? v.toFixed(1) : v.toFixed(2);
    return s + unit;
  }

  function lastNumber(values) {
    for (let i = values.length - 1; i >= 0; i--) if (typeof values[i] === 'number') return values[i];
    return undefined;
  }

  // chart draws one metric of several series over the window [t1 - span, t1].
  function chart(c, dim, times, series, span) {
    const W = 320, H = 120, L = 2, R = 2, T = 16, B = 4;
    const ts = times.map((t) => Date.parse(t));
    const t1 = ts[ts.length - 1];
    let max = 0;
    for (const s of series) for (const v of s[c.metric] || []) if (typeof v === 'number' && v > max) max = v;
    const top = niceMax(max);
    const x = (t) => L + (W - L - R) * Math.max(0, (t - (t1 - span))) / span;
    const y = (v) => H - B - (H - T - B) * Math.min(v, top) / top;
    const root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'plot', role: 'img',
      'aria-label': c.title + ' ' + dim.title });
    root.append(svg('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }),
      svg('line', { class: 'grid', x1: L, x2: W - R, y1: T, y2: T }));
    const label = svg('text', { class: 'scale', x: L + 2, y: T - 4 });
    label.textContent = fmtValue(top, c.unit);
    root.append(label);
    let drawn = 0;
    series.forEach((s, i) => {
      const values = s[c.metric] || [];
      const g = svg('g', { class: 'series s' + (i % 8), 'data-series': s.name });
      let seg = [];
      const flush = () => {
        if (seg.length === 1) g.append(svg('circle', { cx: seg[0][0], cy: seg[0][1], r: 2 }));
        else if (seg.length > 1) g.append(svg('polyline', { points: seg.map((p) => p[0].toFixed(1) + ',' + p[1].toFixed(1)).join(' ') }));
        drawn += seg.length;
        seg = [];
      };
      values.forEach((v, j) => {
        if (typeof v !== 'number' || isNaN(ts[j])) { flush(); return; }
        seg.push([x(ts[j]), y(v)]);
      });
      flush();
      root.append(g);
    });
    const legend = el('ul', { class: 'legend' }, series.map((s, i) =>
      el('li', { class: 's' + (i % 8) }, s.name + ' ', el('span', { class: 'num' }, fmtValue(lastNumber(s[c.metric] || []), c.unit)))));
    return el('figure', { class: 'chart', 'data-metric': c.metric, 'data-dim': dim.key, 'data-points': String(drawn) },
      el('figcaption', null, c.title + ' ' + dim.title), root, legend);
  }

  function renderCharts(h) {
    const times = h && Array.isArray(h.times) ? h.times : [];
    $('charts-section').hidden = times.length === 0;
    if (times.length === 0) return;
    const step = typeof h.interval_ns === 'number' && h.interval_ns > 0 ? h.interval_ns / 1e6 : 10000;
    const span = Math.max(step * Math.max(times.length - 1, 1), step * 60);
    $('charts-window').textContent = '(last ' + ago(Math.round(span / 1000)) + ', ' + ago(Math.round(step / 1000)) + ' steps)';
    const figures = [];
    for (const dim of DIMENSIONS) {
      const series = Array.isArray(h[dim.key]) ? h[dim.key] : [];
      if (series.length === 0) continue;
      for (const c of CHARTS) figures.push(chart(c, dim, times, series, span));
    }
    $('charts').replaceChildren(...figures);
  }

  function renderEvents(events) {
    const list = Array.isArray(events) ? events.slice(0, MAX_EVENTS) : [];
    if (list.length === 0) {
      $('events').replaceChildren(el('li', { class: 'none' }, 'none since the LB started'));
      return;
    }
    $('events').replaceChildren(...list.map((e) => el('li', { 'data-kind': e.kind || '' },
      el('time', { dateTime: e.time || '' }, e.time ? fmtTime(e.time) : '—'),
      badge(String(e.kind || 'event').replace(/_/g, ' '), 'kind-' + String(e.kind || '').replace(/[^a-z_]/g, '')),
      e.subject ? el('strong', null, e.subject) : null,
      e.from || e.to ? el('span', null, (e.from || '?') + ' → ' + (e.to || '?')) : null,
      e.detail ? el('span', { class: 'detail' }, e.detail) : null)));
  }

  // ---- rendering -----------------------------------------------------

  function nodeRow(n) {
    const op = n.operator || '';
    const cells = [
      el('td', { class: 'name', 'data-label': 'Node' },
        n.name, n.admin ? el('span', { class: 'tag' }, 'admin') : null,
        el('span', { class: 'addr' }, n.address || '')),
      el('td', { 'data-label': 'State' }, el('span', null, badge(n.state || 'unknown'),
        n.health && n.health !== n.state ? el('span', { class: 'addr' }, 'checks: ' + n.health) : null)),
      el('td', { 'data-label': 'Reason' }, n.reason || '—'),
      // The code-version fingerprint, shortened; the whole one and why it
      // is unknown are in the cell's title.
      el('td', { class: 'version', 'data-label': 'Version', title: n.version_error || n.version || '' },
        n.version ? String(n.version).slice(0, 8) : '—'),
      el('td', { class: 'num', 'data-label': 'Check latency' }, fmtDuration(n.check_latency_ns)),
      el('td', { class: 'num', 'data-label': 'Requests' }, scalar('requests', n.requests)),
      el('td', { class: 'num', 'data-label': 'Failures' }, scalar('failures', n.failures)),
      el('td', { class: 'num', 'data-label': 'In flight' }, scalar('in_flight', n.in_flight)),
      el('td', { class: 'num', 'data-label': 'Weight' },
        n.effective_weight !== undefined && n.effective_weight !== n.weight
          ? n.effective_weight + ' / ' + n.weight : scalar('weight', n.weight)),
      el('td', { class: 'actions-cell', 'data-label': 'Actions' }, el('div', { class: 'actions' },
        ACTIONS.map((a) => el('button', {
          type: 'button', class: a.action, 'data-node': n.name, 'data-action': a.action,
          title: a.label + ' ' + n.name,
          disabled: a.action === 'drain' ? op === 'draining'
            : a.action === 'maintenance' ? op === 'maintenance'
              : !op && n.state === 'up',
        }, a.label)))),
    ];
    return el('tr', { 'data-node': n.name, 'data-state': n.state || '' }, cells);
  }

  function render(st) {
    const nodes = Array.isArray(st.nodes) ? st.nodes : [];
    $('nodes').tBodies[0].replaceChildren(...nodes.map(nodeRow));
    const counts = {};
    for (const n of nodes) counts[n.state] = (counts[n.state] || 0) + 1;
    const parts = [nodes.length + ' node' + (nodes.length === 1 ? '' : 's') + ': ' +
      (Object.entries(counts).map(([s, c]) => c + ' ' + s).join(', ') || 'none')];
    if (st.pool_ok === false) parts.push('NO HEALTHY NODE');
    // mosparo's health API does not cover the shared cache (FACTS 11.9).
    if (st.css_cache && st.css_cache.reachable === false) parts.push('CSS CACHE DOWN');
    // The seed's "sync the source code" step was forgotten (FACTS 11.3).
    if (st.versions && st.versions.mixed === true) parts.push('NODES RUN DIFFERENT VERSIONS');
    // ACME certificates that fail or run out within 14 days (issue 14).
    for (const d of (st.acme && Array.isArray(st.acme.domains)) ? st.acme.domains : []) {
      const left = d.not_after ? (Date.parse(d.not_after) - Date.now()) / 86400000 : NaN;
      if (d.state === 'failing' || d.state === 'expired') parts.push('CERTIFICATE ' + d.state.toUpperCase() + ': ' + d.domain);
      else if (left < 14) parts.push('CERTIFICATE EXPIRES IN ' + Math.max(0, Math.floor(left)) + ' DAYS: ' + d.domain);
    }
    if (st.version) parts.push('version ' + st.version);
    $('summary').textContent = parts.join(' · ');

    // Every other section /status has (vrrp, caches, cron, … as they are
    // added) is rendered generically; scalars go to the facts list.
    const sections = [];
    const facts = el('dl', { id: 'facts' });
    // Known sections first, in the order an operator reads them.
    const order = (k) => { const i = SECTION_ORDER.indexOf(k); return i < 0 ? SECTION_ORDER.length : i; };
    const entries = Object.entries(st).sort((a, b) => order(a[0]) - order(b[0]));
    renderCharts(st.history);
    renderEvents(st.events);
    for (const [k, v] of entries) {
      if (k === 'nodes' || k === 'history' || k === 'events') continue;
      if (isScalar(v) || (Array.isArray(v) && v.every(isScalar))) {
        facts.append(el('dt', null, humanize(k)), el('dd', null, value(k, v, 0)));
        continue;
      }
      sections.push(el('section', { id: 'section-' + k, 'data-key': k }, el('h2', null, humanize(k)), value(k, v, 0)));
    }
    $('sections').replaceChildren(...sections);
    $('facts').replaceWith(facts);
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const r = await fetch('status', { cache: 'no-store', headers: { Accept: 'application/json' } });
      if (!r.ok) throw new Error('GET /status answered ' + r.status);
      render(await r.json());
      document.body.classList.remove('stale');
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
      if (unreachable) { unreachable = false; hideMessage(); }
    } catch (e) {
      unreachable = true;
      document.body.classList.add('stale');
      showMessage('mosparo-lb is not answering (' + e.message + '); retrying.', true);
    } finally {
      timer = setTimeout(refresh, REFRESH_MS);
    }
  }

  async function act(name, action, button) {
    const a = ACTIONS.find((x) => x.action === action);
    if (a.confirm && !window.confirm(a.confirm.replace('%s', name))) return;
    if (tokenRequired && !getToken()) {
      showTokenForm('Enter the admin token to change node states.');
      return;
    }
    button.disabled = true;
    const headers = { [CSRF_HEADER]: csrf };
    if (getToken()) headers.Authorization = 'Bearer ' + getToken();
    try {
      const r = await fetch('nodes/' + encodeURIComponent(name) + '/' + action,
        { method: 'POST', headers: headers, cache: 'no-store', credentials: 'omit' });
      let body = {};
      try { body = await r.json(); } catch (e) { /* not JSON: use the status line */ }
      if (r.status === 401) {
        setToken('');
        showTokenForm('The admin token was refused; enter it again.');
        return;
      }
      if (!r.ok) throw new Error(body.errorMessage || r.status + ' ' + r.statusText);
      showMessage(name + ': ' + a.label.toLowerCase() + ' applied.', false);
    } catch (e) {
      showMessage(a.label + ' ' + name + ' failed: ' + e.message, true);
    } finally {
      refresh();
    }
  }

  function init() {
    $('nodes').addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-action]');
      if (b && !b.disabled) act(b.dataset.node, b.dataset.action, b);
    });
    $('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      setToken($('token-input').value.trim());
      $('token-input').value = '';
      $('token-form').hidden = true;
      showMessage(getToken() ? 'Token kept for this tab.' : 'Token cleared.', false);
    });
    $('token-forget').addEventListener('click', () => {
      setToken('');
      $('token-form').hidden = true;
      showMessage('Token forgotten.', false);
    });
    $('token-button').addEventListener('click', () => showTokenForm(''));
    // Without admin.token the API takes writes from loopback as they are.
    $('token-button').hidden = !tokenRequired;
    if (tokenRequired && !getToken()) $('token-form').hidden = false;
    refresh();
  }

  init();
})();
