/* The trace browser's page. hooks/view.py writes the data it reads: data/manifest.js, the
   sessions list in shards (data/index-NNNN.js) and one file per session (data/s/KEY.js), all
   scripts calling VIEW.* because Chromium blocks fetch() of file:// URLs. No framework, no
   network. The URL hash holds the filters, the page and the session and turn shown (see
   hooks/view.py for its keys), so a link (e.g. from `assistant report`) opens a filtered view. */
(function () {
  'use strict';

  const M = window.VIEW_MANIFEST || {sessions: 0, turns: 0, shards: 0, classes: [], stages: [], signals: [],
    conditions: [], voices: [], intents: [], problems: []};
  const PAGE = 50;
  // an index row, as hooks/view.py _row writes it
  const R = {key: 0, id: 1, turns: 2, fp: 3, pred: 4, sig: 5, cond: 6, voice: 7, intents: 8, text: 9, ms: 10, status: 11};
  const CODE = {w: 'wake', a: 'asr', n: 'nlu', r: 'resolve', x: 'result', c: 'correct'};
  const LETTER = {wake: 'W', asr: 'A', nlu: 'N', resolve: 'R', result: 'X', correct: '✓'};
  const SIGNAL_NAMES = {barge_in: 'barge-in', rephrase_of_previous: 'rephrase', negative_feedback: '“no”', abandoned: 'abandoned'};
  const DEFECT = /[wanrx]/;

  const rows = [];
  let shardsIn = 0;
  const sessions = {};
  const waiting = {};
  let hash = {};
  let queued = false;
  const timing = window.VIEW_TIMING = {firstRender: null, allLoaded: null, shards: 0};

  const $ = (sel) => document.querySelector(sel);
  const listSec = $('#list'), sesSec = $('#session'), tbody = $('#sessions tbody');

  // small DOM helpers: trace text only ever goes in as text, never as markup ------------------
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat(3)) {
      if (kid == null || kid === false) continue;
      e.append(kid instanceof Node ? kid : String(kid));
    }
    return e;
  }
  const fmt = (x, d = 2) => (x == null ? '—' : typeof x === 'number' ? (Number.isInteger(x) ? String(x) : x.toFixed(d)) : String(x));
  const json = (x) => JSON.stringify(x);
  // a failure point from the data, only ever one of the known classes in class names and styles
  const known = (fp) => (M.classes.includes(fp) ? fp : 'none');
  const cls = (fp) => 'fp-' + known(fp);
  function cell(fp, extra, title) {
    return el('span', {class: 'cell ' + cls(fp) + (extra ? ' ' + extra : ''), title: title || fp || 'no label'},
      fp ? LETTER[fp] || fp[0] : '·');
  }
  function loadScript(src, onerror) {
    const s = document.createElement('script');
    s.src = src;
    s.onerror = onerror;
    document.head.append(s);
  }

  // the URL hash ------------------------------------------------------------------------------
  function parseHash() {
    const out = {};
    for (const part of location.hash.replace(/^#/, '').split('&')) {
      if (!part) continue;
      const i = part.indexOf('=');
      const k = decodeURIComponent(i < 0 ? part : part.slice(0, i));
      out[k] = i < 0 ? '1' : decodeURIComponent(part.slice(i + 1).replace(/\+/g, ' '));
    }
    return out;
  }
  function makeHash(h) {
    const parts = Object.keys(h).filter((k) => h[k] != null && h[k] !== '')
      .map((k) => encodeURIComponent(k) + '=' + encodeURIComponent(h[k]));
    return parts.length ? '#' + parts.join('&') : '';
  }
  function go(next, push) {
    const h = makeHash(next);
    if (h === location.hash) return;
    if (push) {
      location.hash = h || '#';
    } else {
      history.replaceState(null, '', h || location.pathname + location.search);
      route();
    }
  }
  const without = (h, ...keys) => Object.fromEntries(Object.entries(h).filter(([k]) => !keys.includes(k)));

  // data arriving -----------------------------------------------------------------------------
  window.VIEW = {
    index(i, data) {
      for (const r of data) rows.push(r);
      shardsIn++;
      timing.shards = shardsIn;
      if (shardsIn < M.shards) loadScript('data/index-' + String(shardsIn).padStart(4, '0') + '.js', shardMissing);
      else timing.allLoaded = performance.now();
      status();
      // Rebuilding the table for every shard left the tab ~60 MB bigger at 10,000 sessions: redraw
      // only while the page still has room for more matches, and once the list is complete.
      if (!hash.s) {
        if (shardsIn === 1 || shardsIn === M.shards || tbody.rows.length < PAGE) schedule();
        else countText(filtered(hash).length);
      }
    },
    session(key, data) {
      sessions[key] = data;
      const calls = waiting[key] || [];
      delete waiting[key];
      calls.forEach((f) => f(data));
    },
  };
  function shardMissing(ev) {
    $('#loading').textContent = 'missing ' + ev.target.getAttribute('src') + ': the list is incomplete';
  }
  function status() {
    $('#summary').textContent = M.sessions + ' sessions, ' + M.turns + ' turns';
    $('#loading').textContent = shardsIn < M.shards ? 'loading the list ' + shardsIn + '/' + M.shards + '…' : '';
  }
  function schedule() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; if (!hash.s) renderList(); });
  }

  // the sessions list -------------------------------------------------------------------------
  const codeOf = (fp) => Object.keys(CODE).find((c) => CODE[c] === fp) || '?';
  function turnTest(h) {
    const fp = h.fp ? codeOf(h.fp) : null, pred = h.pred ? codeOf(h.pred) : null, mm = h.mismatch === '1';
    if (!fp && !pred && !mm) return null;
    return (r, i) => (!fp || r[R.fp][i] === fp) && (!pred || r[R.pred][i] === pred) &&
      (!mm || (r[R.pred][i] !== '-' && r[R.fp][i] !== '-' && r[R.pred][i] !== r[R.fp][i]));
  }
  function hits(r, test) {
    const out = [];
    if (test) for (let i = 0; i < r[R.turns]; i++) if (test(r, i)) out.push(i);
    return out;
  }
  function facet(list, value) { return value == null || value === '' ? -2 : list.indexOf(value); }
  function filtered(h) {
    const test = turnTest(h);
    const cond = facet(M.conditions, h.cond), voice = facet(M.voices, h.voice), intent = facet(M.intents, h.intent);
    const terms = (h.q || '').toLowerCase().split(/\s+/).filter(Boolean);
    const out = [];
    for (const r of rows) {
      if (h.defect === '1' && !DEFECT.test(r[R.fp])) continue;
      if (cond !== -2 && r[R.cond] !== cond) continue;
      if (voice !== -2 && r[R.voice] !== voice) continue;
      if (intent !== -2 && !r[R.intents].includes(intent)) continue;
      if (terms.length && !terms.every((t) => r[R.text].includes(t))) continue;
      if (test && !hits(r, test).length) continue;
      out.push(r);
    }
    const s = h.sort;
    const stage = M.stages.indexOf(s);
    const defects = (r) => r[R.fp].replace(/[c-]/g, '').length;
    if (s === 'turns') out.sort((a, b) => b[R.turns] - a[R.turns]);
    else if (s === 'defects') out.sort((a, b) => defects(b) - defects(a));
    else if (stage >= 0) out.sort((a, b) => b[R.ms][stage] - a[R.ms][stage]);
    return out;
  }
  function rowEl(r, test) {
    const n = r[R.turns], fp = r[R.fp], pred = r[R.pred];
    const hit = new Set(hits(r, test));
    const labeled = fp.replace(/-/g, '').length;
    const correct = fp.split('c').length - 1;
    const sig = M.signals.map((name, i) => r[R.sig][i] ?
      el('span', {class: 'chip' + (name === 'abandoned' ? ' bad' : '')}, SIGNAL_NAMES[name] || name, r[R.sig][i] > 1 ? ' ×' + r[R.sig][i] : '') : null);
    const stage = M.stages.indexOf(hash.sort);
    const first = hit.size ? Math.min(...hit) + 1 : null;
    return el('tr', {'data-key': r[R.key], onclick: () => go(Object.assign({}, hash, {s: r[R.key], t: first}), true)},
      el('td', {class: 'id'}, el('a', {href: makeHash(Object.assign({}, hash, {s: r[R.key], t: first}))}, r[R.id])),
      el('td', null, n),
      el('td', null, labeled ? correct + '/' + labeled + ' correct ' : '', r[R.status] ? el('span', {class: 'chip'}, r[R.status]) : null,
        stage >= 0 ? el('span', {class: 'chip'}, M.stages[stage] + ' ' + fmt(r[R.ms][stage], 0) + ' ms') : null),
      el('td', null, labeled ? (labeled - correct ? el('span', {class: 'chip bad'}, labeled - correct) : '0') : '—'),
      el('td', null, el('span', {class: 'strip oracle'}, [...fp].map((c, i) =>
        cell(CODE[c], hit.has(i) ? 'hit' : '', 'turn ' + (i + 1) + ': ' + (CODE[c] || 'no oracle label'))))),
      el('td', null, /[^-]/.test(pred) ? el('span', {class: 'strip predicted'}, [...pred].map((c, i) =>
        cell(CODE[c], (hit.has(i) ? 'hit ' : '') + (c !== '-' && fp[i] !== '-' && c !== fp[i] ? 'miss' : ''),
          'turn ' + (i + 1) + ': predicted ' + (CODE[c] || 'none') + ', oracle ' + (CODE[fp[i]] || 'none')))) : el('span', {class: 'muted'}, '—')),
      el('td', null, sig),
      el('td', null, M.conditions[r[R.cond]]),
      el('td', {class: 'voice', title: M.voices[r[R.voice]]}, M.voices[r[R.voice]]),
      el('td', {class: 'intents'}, r[R.intents].map((i) => M.intents[i]).join(', ')));
  }
  function countText(n) {
    const loading = shardsIn < M.shards ? ' (of the ' + rows.length + ' loaded so far)' : '';
    $('#count').textContent = n + ' of ' + M.sessions + ' sessions' + loading +
      (turnTest(hash) ? '; outlined turns match the failure-point filters' : '');
  }
  function renderList() {
    listSec.hidden = false;
    sesSec.hidden = true;
    syncFilters();
    const list = filtered(hash);
    const pages = Math.max(1, Math.ceil(list.length / PAGE));
    const page = Math.min(Math.max(parseInt(hash.page || '1', 10) || 1, 1), pages);
    const test = turnTest(hash);
    tbody.replaceChildren(...list.slice((page - 1) * PAGE, page * PAGE).map((r) => rowEl(r, test)));
    countText(list.length);
    const pager = $('#pager');
    pager.replaceChildren(
      el('button', {type: 'button', disabled: page <= 1, onclick: () => go(Object.assign({}, hash, {page: page - 1}), false)}, '← previous'),
      el('span', null, 'page ' + page + ' of ' + pages),
      el('button', {type: 'button', disabled: page >= pages, onclick: () => go(Object.assign({}, hash, {page: page + 1}), false)}, 'next →'));
    document.querySelectorAll('#sessions th[data-sort]').forEach((th) =>
      th.classList.toggle('sorted', (hash.sort || '') === th.dataset.sort));
    if (timing.firstRender == null && rows.length) {
      timing.firstRender = performance.now();
      document.body.dataset.ready = '1';
    }
  }

  // the filter form mirrors the hash ----------------------------------------------------------
  function fill(select, values) {
    for (const v of values) select.append(el('option', {value: v}, v));
  }
  function syncFilters() {
    for (const input of document.querySelectorAll('#filters [data-key]')) {
      const v = hash[input.dataset.key] || '';
      if (input.type === 'checkbox') input.checked = v === '1';
      else if (input.tagName === 'SELECT') {
        if (v && ![...input.options].some((o) => o.value === v)) input.append(el('option', {value: v}, v + ' (none here)'));
        input.value = v;
      } else if (document.activeElement !== input) input.value = v;
    }
  }
  function setupFilters() {
    fill($('#f-fp'), M.classes);
    fill($('#f-pred'), M.classes);
    fill($('#f-cond'), M.conditions.slice().sort());
    fill($('#f-voice'), M.voices.slice().sort());
    fill($('#f-intent'), M.intents.slice().sort());
    let timer = null;
    for (const input of document.querySelectorAll('#filters [data-key]')) {
      const apply = () => {
        const v = input.type === 'checkbox' ? (input.checked ? '1' : '') : input.value.trim();
        go(Object.assign(without(hash, 'page', 's', 't'), {[input.dataset.key]: v}), false);
      };
      if (input.type === 'search') input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(apply, 150); });
      else input.addEventListener('change', apply);
    }
    $('#f-clear').addEventListener('click', () => go({}, false));
    document.querySelectorAll('#sessions th[data-sort]').forEach((th) => th.addEventListener('click', () =>
      go(Object.assign(without(hash, 'page'), {sort: th.dataset.sort}), false)));
    const legend = el('div', {class: 'legend'}, 'failure points: ',
      M.classes.map((c) => [cell(c), c + ' ']), cell(null), 'no label; an underlined prediction differs from the oracle');
    $('#filters').after(legend);
    if (M.problems && M.problems.length) legend.after(el('p', {class: 'muted'}, 'left out: ' + M.problems.join('; ')));
  }

  // one session -------------------------------------------------------------------------------
  function need(key, then) {
    if (sessions[key]) return then(sessions[key]);
    (waiting[key] = waiting[key] || []).push(then);
    if (waiting[key].length === 1) {
      loadScript('data/s/' + encodeURIComponent(key) + '.js', () => {
        delete waiting[key];
        sesSec.replaceChildren(el('p', null, el('a', {href: makeHash(without(hash, 's', 't'))}, '← sessions')),
          el('p', null, 'No session ' + key + ' in this view (data/s/' + key + '.js is missing).'));
      });
    }
  }
  function showSession() {
    listSec.hidden = true;
    sesSec.hidden = false;
    const key = hash.s;
    if (!sessions[key]) {
      sesSec.replaceChildren(el('p', null, 'loading session ' + key + '…'));
      need(key, () => { if (hash.s === key) showSession(); });
      return;
    }
    renderSession(key, sessions[key]);
  }
  function turnMatches(turn) {
    const test = turnTest(hash);
    if (!test) return false;
    const code = (lab) => (lab && codeOf(lab.failure_point)) || '-';
    return test([null, null, 1, code(turn.oracle), code(turn.predicted)], 0);
  }
  function renderSession(key, s) {
    const turns = s.turns;
    const byN = Object.fromEntries(turns.map((t) => [String(t.n), t]));
    let chosen = byN[hash.t] || turns.find(turnMatches) || turns[0];
    const m = s.meta || {};
    const metaBits = [m.domain && 'domain ' + m.domain, m.device && 'device ' + (m.device.id || '') + (m.device.room ? ' (' + m.device.room + ')' : ''),
      m.persona && 'persona ' + m.persona, m.condition && 'condition ' + m.condition, m.voice && 'voice ' + m.voice,
      m.fidelity && m.fidelity + ' fidelity', m.start_time && 'start ' + m.start_time].filter(Boolean);
    const cards = turns.map((t) => el('div', {class: 'turn-card' + (t === chosen ? ' sel' : '') + (turnMatches(t) ? ' hit' : ''),
      'data-turn': t.n, style: 'border-left-color: var(--' + known(t.oracle && t.oracle.failure_point) + ')',
      onclick: () => go(Object.assign({}, hash, {t: t.n}), false)},
      el('div', null, el('b', null, '#' + t.n + ' '), cell(t.oracle && t.oracle.failure_point, '', 'oracle'), ' ',
        t.predicted ? cell(t.predicted.failure_point, t.predicted.failure_point !== (t.oracle || {}).failure_point ? 'miss' : '', 'predicted') : null,
        el('span', {class: 'muted'}, ' ' + fmt(t.start_s, 1) + ' s ' + (t.intent || (t.heard == null ? 'not woken' : t.nlu && t.nlu.out_of_domain ? 'out of domain' : 'no intent')))),
      t.spoken || t.said ? el('div', {class: 'said'}, 'said: ' + (t.spoken || t.said)) : null,
      t.heard != null ? el('div', {class: 'heard'}, 'heard: ' + t.heard) : null,
      t.reply ? el('div', {class: 'reply'}, '“' + t.reply + '”') : null));
    sesSec.replaceChildren(
      el('p', null, el('a', {href: makeHash(without(hash, 's', 't')), id: 'back'}, '← sessions')),
      el('h2', null, 'Session ' + s.id),
      el('div', {class: 'meta'}, metaBits.join(' · '), ' · ', el('span', {title: s.file}, s.file),
        el('details', null, el('summary', null, 'session metadata'), el('pre', {class: 'json'}, JSON.stringify(m, null, 1)))),
      timeline(turns, chosen),
      el('div', {class: 'layout'}, el('div', {class: 'turns'}, cards), el('div', {id: 'turn-detail', 'data-turn': chosen ? chosen.n : ''},
        chosen ? turnDetail(chosen) : el('p', null, 'This session has no finished turns.'))));
    window.scrollTo(0, 0);
  }
  function timeline(turns, chosen) {
    const span = (t) => [t.wake && t.wake.start_s != null ? t.wake.start_s : t.start_s, t.wake && t.wake.end_s != null ? t.wake.end_s : t.start_s];
    const end = Math.max(1, ...turns.map((t) => Math.max(t.reply_end_s || 0, span(t)[1] || 0)));
    const pct = (x) => (100 * (x || 0) / end).toFixed(3) + '%';
    const bar = el('div', {class: 'timeline', title: 'the session, 0–' + end.toFixed(1) + ' s: what the user said, then the reply'});
    for (const t of turns) {
      const [a, b] = span(t);
      const color = 'background: var(--' + known(t.oracle && t.oracle.failure_point) + ')';
      const pick = () => go(Object.assign({}, hash, {t: t.n}), false);
      bar.append(el('div', {class: 'seg' + (t === chosen ? ' sel' : ''), style: 'left:' + pct(a) + ';width:' + pct(Math.max(b - a, 0)) + ';' + color,
        title: '#' + t.n + ' ' + (t.spoken || t.said || t.heard || ''), onclick: pick}));
      if (t.reply_end_s > t.reply_start_s) {
        bar.append(el('div', {class: 'seg reply', style: 'left:' + pct(t.reply_start_s) + ';width:' + pct(t.reply_end_s - t.reply_start_s) + ';background:#4c72b0',
          title: '#' + t.n + ' reply: ' + (t.reply || ''), onclick: pick}));
      }
    }
    return bar;
  }

  // one turn ----------------------------------------------------------------------------------
  function kv(pairs) {
    return el('table', null, pairs.filter((p) => p && p[1] != null && p[1] !== '').map(([k, v]) =>
      el('tr', null, el('td', {class: 'k'}, k), el('td', null, v))));
  }
  function words(diff, side, probs) {
    let w = 0;
    return el('span', {class: 'words ' + side}, diff.map(([op, said, heard]) => {
      const word = side === 'said' ? said : heard;
      if (word == null) return null;
      const c = op === '=' ? '' : op === '~' ? 'sub' : op === '-' ? 'del' : 'ins';
      const p = side === 'heard' ? probs[w++] : null;
      const title = op === '~' ? (side === 'said' ? 'heard as “' + heard + '”' : 'said “' + said + '”') :
        op === '-' ? 'not heard' : op === '+' ? 'not said' : null;
      return [el('span', {class: 'w ' + c, title: [title, p != null ? 'p=' + fmt(p, 3) : null].filter(Boolean).join(', ') || null}, word), ' '];
    }));
  }
  function scoreBar(x, width) {
    return el('span', {class: 'bar', style: 'width:' + Math.round(Math.max(0, Math.min(1, x || 0)) * (width || 100)) + 'px'});
  }
  function turnDetail(t) {
    const parts = [el('h3', null, 'Turn ' + t.n + (t.source ? ' · ' + t.source : ''))];
    const section = (title, ...body) => parts.push(el('h4', null, title), ...body);
    const a = t.audio || {};
    if (a.utterance || a.reply) {
      section('Audio', el('div', {class: 'audio-row'}, ['utterance', 'reply'].filter((k) => a[k]).map((k) =>
        el('label', null, k + ' ', el('audio', {controls: true, preload: 'metadata', src: a[k], 'data-kind': k})))));
    }
    const probs = (t.words || []).map((w) => w[1]);
    section('Said and heard', kv([
      t.spoken && t.spoken !== t.said ? ['spoken', t.spoken] : null,
      ['said', t.diff ? words(t.diff, 'said', probs) : t.said == null ? el('span', {class: 'muted'}, 'unknown (no gold)') : t.said],
      ['heard', t.diff ? words(t.diff, 'heard', probs) : t.heard == null ? el('span', {class: 'muted'}, 'nothing (not woken)') : t.heard],
      t.diff ? ['', el('span', {class: 'muted'}, 'yellow: heard differently · red: not heard · blue: heard, not said; hover for word probabilities')] : null,
      t.wake ? ['wake', [t.wake.word ? t.wake.word + ' ' + fmt(t.wake.score, 3) : 'no wake word', ' · endpoint ' + fmt(t.wake.endpoint),
        t.wake.condition ? ' · ' + t.wake.condition : '', t.wake.voice ? ' · ' + t.wake.voice : ''].join('')] : null,
      t.asr ? ['asr', (t.asr.model || '') + ' (' + (t.asr.source || '') + ') · avg logprob ' + fmt(t.asr.avg_logprob, 3) + ' · no-speech ' + fmt(t.asr.no_speech_prob, 3)] : null,
    ]));
    const nlu = t.nlu;
    if (nlu) {
      section('Understood',
        kv([['intent', (nlu.intent || (nlu.out_of_domain ? 'out of domain' : 'none')) + ' · confidence ' + fmt(nlu.confidence, 3) + ' · coverage ' + fmt(nlu.coverage, 2)],
          ['model', nlu.model]]),
        (nlu.nbest || []).length ? el('table', {class: 'nbest'}, el('tr', null, el('th', null, 'n-best'), el('th', null, 'score'), el('th')),
          nlu.nbest.map((x) => el('tr', {class: x.intent === nlu.intent ? 'chosen' : null}, el('td', null, x.intent), el('td', null, fmt(x.score, 4)), el('td', null, scoreBar(x.score))))) : null,
        (nlu.slots || []).length ? el('table', {class: 'slots'}, el('tr', null, ['slot', 'words', 'value', 'type', 'confidence'].map((h) => el('th', null, h))),
          nlu.slots.map((x) => el('tr', null, el('td', null, x.name), el('td', null, x.text), el('td', null, json(x.value)), el('td', null, x.type), el('td', null, fmt(x.confidence, 3)))))
          : el('p', {class: 'muted'}, 'no slots'));
    }
    const res = t.resolve;
    if (res) {
      const ents = (res.entities || []).map((e) => el('div', {class: 'entity'},
        el('div', null, el('b', null, e.slot), ' “' + e.text + '” → ', e.id ? (e.name || e.id) + ' (' + e.id + ')' : el('span', {class: 'chip bad'}, 'unresolved'),
          ' · score ' + fmt(e.score, 3) + ' · ' + (e.method || ''), /context/.test(e.method || '') ? el('span', {class: 'chip'}, 'context decided') : null),
        (e.candidates || []).length ? el('table', {class: 'candidates'}, el('tr', null, ['', 'candidate', 'name', 'score', 'method'].map((h) => el('th', null, h))),
          e.candidates.map((c) => el('tr', {class: c.id === e.id ? 'chosen' : null}, el('td', null, c.id === e.id ? '✓' : ''), el('td', null, c.id),
            el('td', null, c.name), el('td', null, fmt(c.score, 3)), el('td', null, c.method)))) : null));
      section('Resolved', ents.length ? ents : el('p', {class: 'muted'}, 'no entities'),
        kv([Object.keys(res.values || {}).length ? ['values', json(res.values)] : null,
          (res.carried || []).length ? ['from context', res.carried.map((c) => el('span', {class: 'chip'}, c))] : ['from context', el('span', {class: 'muted'}, 'nothing carried over')],
          res.clarification ? ['clarification', json(res.clarification)] : null]));
    }
    const out = t.respond;
    section('Reply', kv([
      ['reply', t.reply ? '“' + t.reply + '”' : el('span', {class: 'muted'}, 'none')],
      ['type', (t.reply_type || '—') + ' · status ' + (t.status || '—')],
      out && out.api ? ['api', out.api + ' ' + json(out.args || {})] : null,
      out && out.result && Object.keys(out.result).length ? ['result', json(out.result)] : null,
      out && out.expects ? ['expects', out.expects] : null,
      t.tts ? ['speech', (t.tts.backend || '') + ' ' + (t.tts.voice || '') + ' · first chunk ' + fmt(t.tts.first_chunk_ms, 0) + ' ms'] : null,
      ['played', t.reply_start_s != null ? fmt(t.reply_start_s, 2) + '–' + fmt(t.reply_end_s, 2) + ' s' : null],
    ]));
    section('Stages', waterfall(t));
    section('Injected faults', t.faults.length ? t.faults.map((f) => el('span', {class: 'chip bad fault'}, f)) : el('p', {class: 'muted'}, 'none'));
    section('Labels', labels(t));
    const sig = t.signals || {};
    section('Signals', el('div', null, Object.keys(sig).filter((k) => sig[k] === true).map((k) => el('span', {class: 'chip bad'}, k.replace(/_/g, ' '))),
      el('span', {class: 'muted'}, ' next turn after ' + fmt(sig.time_to_next_turn_s, 2) + ' s · repeat count ' + fmt(sig.repeat_count) +
        (sig.lexical_overlap_previous != null ? ' · overlap with previous ' + fmt(sig.lexical_overlap_previous, 2) : ''))));
    if (t.errors.length) section('Errors', t.errors.map((e) => el('div', null, el('b', null, e.code), ' (' + e.stage + ') ' + e.message)));
    parts.push(el('details', null, el('summary', null, 'the turn as data'), el('pre', {class: 'json'}, JSON.stringify(t, null, 1))));
    return parts;
  }
  function waterfall(t) {
    const bars = t.waterfall || [];
    if (!bars.length) return el('p', {class: 'muted'}, 'no stage timings');
    const end = Math.max(1e-6, ...bars.map((b) => b.start + b.ms), ...(t.chunks || []).map((c) => c.at));
    const pct = (x) => (100 * x / end).toFixed(3) + '%';
    return el('div', {class: 'waterfall'},
      bars.map((b) => el('div', {class: 'row', 'data-stage': b.stage},
        el('span', null, b.stage),
        el('div', {class: 'track'},
          el('div', {class: 'span st-' + b.stage + (b.error ? ' error' : ''), 'data-stage': b.stage,
            style: 'left:' + pct(b.start) + ';width:' + pct(b.ms), title: b.stage + ' from ' + fmt(b.start, 1) + ' ms for ' + fmt(b.ms, 1) + ' ms' + (b.error ? ' (' + b.error + ')' : '')}),
          (t.chunks || []).filter((c) => c.stage === b.stage).map((c) => el('div', {class: 'tick', style: 'left:' + pct(c.at),
            title: (c.first ? 'first chunk' : 'chunk') + ' at ' + fmt(c.at, 1) + ' ms'}))),
        el('span', null, fmt(b.ms, 1) + ' ms'))),
      el('div', {class: 'muted'}, 'from the turn\'s start: ' + fmt(end, 1) + ' ms' + ((t.chunks || []).length ? '; ticks: audio chunks' : '')));
  }
  function labels(t) {
    const o = t.oracle, p = t.predicted;
    const fpCell = (lab) => lab ? [cell(lab.failure_point), ' ' + lab.failure_point] : el('span', {class: 'muted'}, 'none');
    const rowsP = p && p.p ? M.classes.map((c) => el('tr', {class: c === p.failure_point ? 'chosen' : null},
      el('td', {class: 'k'}, 'p(' + c + ')'), el('td', null, o && o.failure_point === c ? 'oracle' : ''), el('td', {class: 'p'}, scoreBar(p.p[c], 110), ' ' + fmt(p.p[c], 3)))) : [];
    const agree = o && p ? (o.failure_point === p.failure_point ? el('span', {class: 'chip good'}, 'agree') : el('span', {class: 'chip bad'}, 'predicted ≠ oracle')) : null;
    return el('div', null,
      el('table', {class: 'labels'},
        el('tr', null, el('th'), el('th', null, 'oracle'), el('th', null, 'predicted')),
        el('tr', {class: 'fp'}, el('td', {class: 'k'}, 'failure point'), el('td', {class: 'oracle'}, fpCell(o)), el('td', {class: 'predicted'}, fpCell(p))),
        el('tr', null, el('td', {class: 'k'}, 'defect'), el('td', null, o ? String(o.defect) : '—'),
          el('td', null, p ? String(p.defect) + (p.p_defect != null ? ' (p=' + fmt(p.p_defect, 3) + ')' : '') : '—')),
        el('tr', null, el('td', {class: 'k'}, 'source'), el('td', null, o ? o.source || '' : ''), el('td', null, p ? p.source || '' : '')),
        rowsP),
      agree,
      t.gold ? kv([['gold', [t.gold.intent || (t.gold.out_of_domain ? 'out of domain' : '—'), ' ', json(t.gold.entities || {}),
        t.gold.wake === false ? ' · not addressed to the assistant' : ''].join('')],
      ['judged', t.correct == null ? '—' : t.correct ? 'correct' : 'wrong']]) : null);
  }

  // routing -----------------------------------------------------------------------------------
  function route() {
    hash = parseHash();
    if (hash.s) showSession();
    else renderList();
  }
  window.addEventListener('hashchange', route);
  setupFilters();
  status();
  hash = parseHash();
  if (hash.s) showSession();
  if (M.shards) loadScript('data/index-0000.js', shardMissing);
  else { $('#count').textContent = 'No sessions.'; document.body.dataset.ready = '1'; }
})();
