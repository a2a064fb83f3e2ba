// posuto web admin.  Plain JavaScript, no framework.
//
// Rule for every view: data from the server is put into the page with
// textContent (or as an attribute value through the DOM), never as HTML,
// so a user named "<img src=x onerror=alert(1)>" is shown as those
// characters.  The Content-Security-Policy forbids inline script anyway.
'use strict';

(function () {
  const I18N = window.POSUTO_I18N;
  const $ = (sel) => document.querySelector(sel);

  const state = {
    lang: pickLanguage(),
    csrf: null,
    events: null,
    view: null,
    settings: null,
    live: false,
  };

  // Japanese when the browser prefers it (its Accept-Language), unless the
  // user chose otherwise here.
  function pickLanguage() {
    const saved = localStorage.getItem('posuto.lang');
    if (saved === 'ja' || saved === 'en') return saved;
    const prefs = navigator.languages && navigator.languages.length
      ? navigator.languages : [navigator.language || 'en'];
    return String(prefs[0]).toLowerCase().startsWith('ja') ? 'ja' : 'en';
  }

  function t(key, vars) {
    let s = (I18N[state.lang] && I18N[state.lang][key]) || I18N.en[key] || key;
    if (vars) for (const k of Object.keys(vars)) s = s.replace('{' + k + '}', String(vars[k]));
    return s;
  }

  function applyLanguage() {
    document.documentElement.lang = state.lang;
    document.title = t('title');
    $('#lang').value = state.lang;
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    setLive(state.live);
    // Labels of the form are built by script: rebuilt in the new language
    // (unless being edited).
    if (state.view) render(state.view);
  }

  // ---- HTTP

  async function api(path, opts) {
    const o = Object.assign({ credentials: 'same-origin', headers: {} }, opts || {});
    if (o.body !== undefined) {
      o.headers['Content-Type'] = 'application/json';
      o.body = JSON.stringify(o.body);
    }
    if (o.method && o.method !== 'GET' && state.csrf) o.headers['X-CSRF-Token'] = state.csrf;
    const r = await fetch(path, o);
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (r.status === 401 && path !== '/api/v1/login') {
      showLogin();
      throw new Error('login required');
    }
    return { status: r.status, data: data, headers: r.headers };
  }

  // ---- helpers that build DOM from data (text only)

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function fillRows(table, rows, emptyText) {
    const body = table.tBodies[0];
    body.replaceChildren();
    if (rows.length === 0) {
      const tr = el('tr');
      const td = el('td', emptyText, 'placeholder');
      td.colSpan = table.tHead ? table.tHead.rows[0].cells.length : 2;
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    for (const cells of rows) {
      const tr = el('tr');
      for (const c of cells) tr.appendChild(el('td', c));
      body.appendChild(tr);
    }
  }

  function duration(s) {
    s = Math.max(0, Math.floor(s));
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24;
    const m = Math.floor(s / 60) % 60, sec = s % 60;
    const parts = [];
    if (d) parts.push(d + t('unit.d'));
    if (d || h) parts.push(h + t('unit.h'));
    if (d || h || m) parts.push(m + t('unit.m'));
    parts.push(sec + t('unit.s'));
    return parts.join(' ');
  }

  function show(value) {
    if (value === null || value === undefined) return t('none');
    if (value === true) return t('yes');
    if (value === false) return t('no');
    if (Array.isArray(value)) return value.length ? value.map(show).join(', ') : t('none');
    if (typeof value === 'object') return JSON.stringify(value);
    return String(value);
  }

  // ---- views

  const views = {
    async dashboard() {
      const [c, s, ch] = await Promise.all([api('/api/v1/counters'), api('/api/v1/sessions'),
        api('/api/v1/chart')]);
      drawChart((ch.data && ch.data.minutes) || []);
      if (!state.settings) state.settings = (await api('/api/v1/settings')).data;
      const metrics = (c.data && c.data.metrics) || [];
      const get = (n) => { const m = metrics.find((x) => x.name === n); return m ? m.value : null; };
      $('#dash-uptime').textContent = duration(get('posuto_uptime_seconds') || 0);
      $('#dash-sessions').textContent = show(get('posuto_sessions'));
      $('#dash-users').textContent = show(get('posuto_users'));
      const pop = (state.settings && state.settings.Pop3Server) || {};
      fillRows($('#listeners-table'), (pop.Listen || []).map((l) =>
        [l.Address, l.Port, t('tls.' + l.Tls)]), t('listeners.none'));
      const sessions = (s.data && s.data.sessions) || [];
      fillRows($('#sessions-table'), sessions.map((x) => [
        x.user || '', x.client, x.protocol, x.state, x.command,
        new Date(x.since * 1000).toLocaleTimeString(state.lang),
        x.bytes_in + ' / ' + x.bytes_out]),
        s.data && s.data.available ? t('sessions.none') : t('sessions.unavailable'));
      fillRows($('#counters-table'), metrics.filter((m) => m.type !== 'histogram').map((m) =>
        [t('metric.' + m.name) + (m.label ? ' (' + m.label.replace(/\w+="([^"]*)"/g, '$1') + ')' : ''),
          show(m.value)]), t('none'));
    },

    async general() {
      const r = await api('/api/v1/settings');
      state.settings = r.data;
      // Never rebuilt under the user's hands: a live event while editing
      // would throw their typing away.
      if (state.generalDirty) return;
      buildGeneral((r.data && r.data.Pop3Server) || {});
    },

    async users() {
      const r = await api('/api/v1/users?stats=1');
      const users = (r.data && r.data.users) || [];
      const body = $('#users-table').tBodies[0];
      body.replaceChildren();
      fillSchemes();
      if (users.length === 0) fillRows($('#users-table'), [], t('users.none'));
      for (const u of users) {
        const tr = el('tr');
        tr.dataset.user = u.name;
        tr.appendChild(el('td', u.name));
        tr.appendChild(el('td', u.messages !== undefined ? u.messages : t('users.stats.' + (u.stats_error || 'none'))));
        tr.appendChild(el('td', u.octets !== undefined ? bytes(u.octets) : ''));
        tr.appendChild(el('td', driftText(u.uidl_drift), 'drift'));
        tr.appendChild(el('td', show(u.mailbox)));
        tr.appendChild(el('td', show(u.scheme)));
        tr.appendChild(el('td', show(u.apop)));
        tr.appendChild(el('td', show(u.origin)));
        const td = el('td');
        td.appendChild(button(t('users.passwd'), 'user-passwd', () => editUser(u.name, 'password')));
        td.appendChild(button(t('users.apop'), 'user-apop', () => editUser(u.name, 'apop')));
        td.appendChild(button(t('users.delete'), 'user-delete danger', () => deleteUser(u.name)));
        tr.appendChild(td);
        body.appendChild(tr);
      }
    },

    async sessions() {
      const r = await api('/api/v1/sessions');
      const list = (r.data && r.data.sessions) || [];
      const table = $('#live-sessions-table');
      const body = table.tBodies[0];
      body.replaceChildren();
      if (list.length === 0) fillRows(table, [], t('sessions.none'));
      for (const x of list) {
        const tr = el('tr');
        tr.dataset.session = String(x.id);
        tr.dataset.user = x.user || '';
        for (const c of [x.id, x.user || '', x.client, x.state,
          new Date(x.since * 1000).toLocaleTimeString(state.lang), x.idle_timeout + t('unit.s')]) {
          tr.appendChild(el('td', c));
        }
        const td = el('td');
        td.appendChild(el('pre', (x.history || []).join('\n'), 'history'));
        tr.appendChild(td);
        const k = el('td');
        k.appendChild(button(t('sessions.kick'), 'kick danger', () => kick(x.id)));
        // Pop3Server.Transcripts: the session's dialogue, redacted (404 if not recorded).
        const tl = el('a', t('sessions.transcript'), 'transcript');
        tl.href = '/api/v1/sessions/' + x.id + '/transcript';
        tl.target = '_blank';
        tl.rel = 'noopener';
        k.appendChild(tl);
        tr.appendChild(k);
        body.appendChild(tr);
      }
    },
  };

  // Pages defined in their own files (mailbox.js): window.POSUTO_PAGES[name]
  // = { match(hash), render(ctx) }, with the helpers they may use.
  const pages = () => window.POSUTO_PAGES || {};
  const pageCtx = { api, t, el, show, csrf: () => state.csrf, lang: () => state.lang };

  // ---- small builders

  function button(text, cls, fn) {
    const b = el('button', text, cls);
    b.type = 'button';
    b.addEventListener('click', fn);
    return b;
  }

  function bytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1048576).toFixed(1) + ' MiB';
  }

  function status(id, text, bad) {
    const e = $(id);
    e.textContent = text;
    e.classList.toggle('bad', !!bad);
  }

  // The UIDL-drift detector's findings: what the user's client will do.
  function driftText(d) {
    if (!d) return '';
    const parts = [];
    if (d.changed) parts.push(t('drift.changed', { n: d.changed }));
    if (d.reappeared) parts.push(t('drift.reappeared', { n: d.reappeared }));
    if (d.reretrieved) parts.push(t('drift.reretrieved', { n: d.reretrieved }));
    return parts.length ? parts.join('; ') : t('drift.none');
  }

  // ---- the chart: the last hour, per minute, drawn as SVG by hand

  const SVG = 'http://www.w3.org/2000/svg';

  function drawChart(minutes) {
    const box = $('#chart');
    const w = 600, h = 120, pad = 4;
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('role', 'img');
    const legend = el('div', null, 'legend');
    const series = [['logins', '#1f6feb'], ['retrieved', '#2e7d32'], ['bytes', '#b26a00']];
    const n = Math.max(1, minutes.length - 1);
    for (const [key, color] of series) {
      const vals = minutes.map((m) => m[key] || 0);
      const max = Math.max(1, ...vals);
      const pts = vals.map((v, i) => (pad + i * (w - 2 * pad) / n).toFixed(1) + ',' +
        (h - pad - v * (h - 2 * pad) / max).toFixed(1)).join(' ');
      const line = document.createElementNS(SVG, 'polyline');
      line.setAttribute('points', pts);
      line.setAttribute('fill', 'none');
      line.setAttribute('stroke', color);
      line.setAttribute('stroke-width', '2');
      line.setAttribute('vector-effect', 'non-scaling-stroke');
      line.dataset.series = key;
      svg.appendChild(line);
      const total = vals.reduce((a, b) => a + b, 0);
      const item = el('span', '— ' + t('chart.' + key) + ': ' +
        (key === 'bytes' ? bytes(total) : total) + ' (' + t('chart.max') + ' ' +
        (key === 'bytes' ? bytes(max === 1 && total === 0 ? 0 : max) : (total === 0 ? 0 : max)) + '/' + t('unit.m') + ')',
      'k-' + key);
      item.dataset.total = String(total);
      legend.appendChild(item);
    }
    box.replaceChildren(svg, legend);
  }

  // ---- Settings › POP3 › General: an editable form

  const GENERAL_FIELDS = [
    ['general.tls', [['Tls.Certificate', 'text'], ['Tls.Key', 'text']]],
    ['general.timeouts', [['TimeOut', 'number'], ['SessionTimeOut', 'number'],
      ['LineTimeOut', 'number'], ['AuthFailDelay', 'number']]],
    ['general.mailbox', [['MailDir', 'text'], ['MailboxPath', 'text'],
      ['MailboxFormat', ['auto', 'maildir', 'emldir', 'mbox']]]],
    ['general.limits', [['MaxConnections', 'number'], ['MaxConnectionsPerIp', 'number'],
      ['MaxConnectRatePerIp', 'number'], ['MaxBadCommands', 'number']]],
  ];

  function settingOf(pop, key) {
    const parts = key.split('.');
    let v = pop;
    for (const p of parts) v = v && typeof v === 'object' ? v[p] : undefined;
    return v;
  }

  function select(options, value, labels) {
    const s = el('select');
    for (const o of options) {
      const opt = el('option', labels ? labels(o) : o);
      opt.value = o;
      s.appendChild(opt);
    }
    s.value = value;
    return s;
  }

  function listenRow(l) {
    const tr = el('tr');
    const proto = select(['pop3', 'lmtp', 'smtp-sink'], l.Protocol || 'pop3');
    const addr = el('input');
    addr.value = l.Address || '';
    const port = el('input');
    port.type = 'number';
    port.value = l.Port !== undefined ? l.Port : '';
    const tls = select(['none', 'starttls', 'implicit'], l.Tls || 'none', (x) => t('tls.' + x));
    const path = el('input');
    path.value = l.Path || '';
    proto.className = 'l-protocol'; addr.className = 'l-address'; port.className = 'l-port';
    tls.className = 'l-tls'; path.className = 'l-path';
    for (const c of [proto, addr, port, tls, path]) {
      const td = el('td');
      td.appendChild(c);
      tr.appendChild(td);
    }
    const td = el('td');
    td.appendChild(button(t('remove'), 'secondary', () => { tr.remove(); state.generalDirty = true; }));
    tr.appendChild(td);
    tr.original = l;
    return tr;
  }

  function buildGeneral(pop) {
    state.generalOriginal = pop;
    const lb = $('#listen-table').tBodies[0];
    lb.replaceChildren();
    for (const l of pop.Listen || []) lb.appendChild(listenRow(l));
    const box = $('#general-fields');
    box.replaceChildren();
    for (const [group, fields] of GENERAL_FIELDS) {
      box.appendChild(el('h2', t(group)));
      for (const [key, type] of fields) {
        const row = el('div', null, 'field');
        const id = 'set-' + key.replace(/\./g, '-');
        const label = el('label', t('set.' + key));
        label.htmlFor = id;
        const v = settingOf(pop, key);
        let input;
        if (Array.isArray(type)) {
          input = select(type, v || type[0]);
        } else {
          input = el('input');
          input.type = type;
          input.value = v === undefined || v === null ? '' : String(v);
        }
        input.id = id;
        input.dataset.key = 'Pop3Server.' + key;
        input.dataset.type = Array.isArray(type) ? 'text' : type;
        input.dataset.original = v === undefined || v === null ? '' : String(v);
        input.addEventListener('input', () => { state.generalDirty = true; });
        const err = el('p', '', 'field-error');
        err.dataset.errorFor = 'Pop3Server.' + key;
        row.append(label, input, err);
        box.appendChild(row);
      }
    }
    clearFieldErrors();
  }

  function clearFieldErrors() {
    for (const e of document.querySelectorAll('#general-form .field-error')) e.textContent = '';
    for (const e of document.querySelectorAll('#general-form .invalid')) e.classList.remove('invalid');
  }

  function listenOf(tr) {
    const q = (c) => tr.querySelector('.' + c);
    const o = { Protocol: q('l-protocol').value };
    if (q('l-path').value) {
      o.Path = q('l-path').value;
    } else {
      o.Address = q('l-address').value;
      o.Port = q('l-port').value === '' ? null : Number(q('l-port').value);
      o.Tls = q('l-tls').value;
    }
    const orig = tr.original || {};
    // What only LMTP and the sink have, kept as it was.
    for (const k of ['AllowNonLoopback', 'MaxMessageSize', 'ProxyTrusted', 'Mode', 'Owner', 'Group']) {
      if (o.Protocol !== 'pop3' && orig[k] !== undefined && !(k === 'MaxMessageSize' && orig[k] === 0) &&
        !(k === 'AllowNonLoopback' && orig[k] === false)) o[k] = orig[k];
      if (k === 'ProxyTrusted' && orig[k] !== undefined) o[k] = orig[k];
    }
    return o;
  }

  function sameListen(a, b) {
    const norm = (l) => JSON.stringify([l.Protocol || 'pop3', l.Address || null, l.Port || null,
      l.Path ? null : (l.Tls || 'none'), l.Path || null]);
    return a.length === b.length && a.every((x, i) => norm(x) === norm(b[i]));
  }

  // Only what changed is sent (a merge patch): every other key in the file stays as written.
  function generalPatch() {
    const pop = {};
    const rows = [...$('#listen-table').tBodies[0].rows];
    const listen = rows.map(listenOf);
    if (!sameListen(listen, state.generalOriginal.Listen || [])) {
      pop.Listen = listen;
      // Listen[] replaces the JumboDogX pair.
      pop.BindAddress = null;
      pop.Port = null;
    }
    for (const input of document.querySelectorAll('#general-fields [data-key]')) {
      if (input.value === input.dataset.original) continue;
      const path = input.dataset.key.split('.').slice(1);
      let v = input.value;
      if (v === '') v = null;
      else if (input.dataset.type === 'number') v = Number(v);
      let o = pop;
      for (const p of path.slice(0, -1)) o = (o[p] = o[p] || {});
      o[path[path.length - 1]] = v;
    }
    return { Pop3Server: pop };
  }

  function showFieldError(key, message) {
    let target = document.querySelector('#general-form [data-error-for="' + CSS.escape(key) + '"]');
    const m = /^Pop3Server\.Listen\[(\d+)\]\.(\w+)/.exec(key);
    if (!target && m) {
      const tr = $('#listen-table').tBodies[0].rows[Number(m[1])];
      const input = tr && tr.querySelector('.l-' + m[2].toLowerCase());
      if (input) input.classList.add('invalid');
      target = document.querySelector('#general-form [data-error-for="Pop3Server.Listen"]');
    }
    if (!target) target = $('#general-status');
    target.textContent = (m ? key.replace('Pop3Server.', '') + ': ' : '') + message;
    const input = document.querySelector('#general-form [data-key="' + CSS.escape(key) + '"]');
    if (input) { input.classList.add('invalid'); input.focus(); }
  }

  async function onGeneralSave(ev) {
    ev.preventDefault();
    clearFieldErrors();
    status('#general-status', t('saving'));
    const patch = generalPatch();
    if (Object.keys(patch.Pop3Server).length === 0) {
      status('#general-status', t('general.unchanged'));
      return;
    }
    const r = await api('/api/v1/settings', { method: 'PUT', body: patch });
    if (r.status === 200) {
      state.generalDirty = false;
      state.settings = r.data;
      buildGeneral((r.data && r.data.Pop3Server) || {});
      status('#general-status', t('general.saved'));
    } else {
      status('#general-status', t('general.refused'), true);
      if (r.data && r.data.key) showFieldError(r.data.key, r.data.error);
      else status('#general-status', (r.data && r.data.error) || t('general.refused'), true);
    }
  }

  // ---- Settings › POP3 › Users

  const SCHEMES = ['SHA512-CRYPT', 'SHA256-CRYPT', 'ARGON2ID', 'BLF-CRYPT', 'SCRAM-SHA-256',
    'SSHA512', 'SHA512', 'SHA256', 'PLAIN'];

  function fillSchemes() {
    for (const s of document.querySelectorAll('.scheme-select')) {
      if (s.options.length) continue;
      const d = el('option', t('users.scheme_default'));
      d.value = '';
      s.appendChild(d);
      for (const x of SCHEMES) { const o = el('option', x); o.value = x; s.appendChild(o); }
    }
  }

  async function onUserAdd(ev) {
    ev.preventDefault();
    const name = $('#user-add-name').value, pw = $('#user-add-password').value;
    const body = { name: name, password: pw };
    if ($('#user-add-scheme').value) body.scheme = $('#user-add-scheme').value;
    const r = await api('/api/v1/users', { method: 'POST', body: body });
    $('#user-add-password').value = '';
    if (r.status === 200) {
      $('#user-add-name').value = '';
      status('#users-status', t('users.added', { u: name }));
      render('users');
    } else {
      status('#users-status', (r.data && r.data.error) || t('general.refused'), true);
    }
  }

  function editUser(name, what) {
    state.editUser = { name: name, what: what };
    $('#user-edit-form').hidden = false;
    $('#user-edit-title').textContent = name;
    $('#user-edit-label').textContent = t(what === 'apop' ? 'users.apop_secret' : 'users.password');
    $('#user-edit-scheme-label').hidden = what === 'apop';
    $('#user-edit-secret').value = '';
    $('#user-edit-secret').focus();
  }

  async function onUserEdit(ev) {
    ev.preventDefault();
    const e = state.editUser;
    if (!e) return;
    const secret = $('#user-edit-secret').value;
    const path = '/api/v1/users/' + encodeURIComponent(e.name) + '/' + (e.what === 'apop' ? 'apop' : 'password');
    let r;
    if (e.what === 'apop') {
      r = secret === '' ? await api(path, { method: 'DELETE', body: {} })
        : await api(path, { method: 'PUT', body: { secret: secret } });
    } else {
      const body = { password: secret };
      if ($('#user-edit-scheme').value) body.scheme = $('#user-edit-scheme').value;
      r = await api(path, { method: 'PUT', body: body });
    }
    $('#user-edit-secret').value = '';
    if (r.status === 200) {
      $('#user-edit-form').hidden = true;
      state.editUser = null;
      status('#users-status', t('users.saved', { u: e.name }));
      render('users');
    } else {
      status('#users-status', (r.data && r.data.error) || t('general.refused'), true);
    }
  }

  async function deleteUser(name) {
    if (!window.confirm(t('users.confirm_delete', { u: name }))) return;
    const r = await api('/api/v1/users/' + encodeURIComponent(name), { method: 'DELETE', body: {} });
    if (r.status === 200) {
      status('#users-status', t('users.deleted', { u: name }));
      render('users');
    } else {
      status('#users-status', (r.data && r.data.error) || t('general.refused'), true);
    }
  }

  async function kick(id) {
    const r = await api('/api/v1/sessions/' + id + '/kick', { method: 'POST', body: {} });
    status('#sessions-status', r.status === 202 ? t('sessions.kicked', { id: id }) :
      (r.data && r.data.error) || t('general.refused'), r.status !== 202);
  }

  function routeView() {
    const h = location.hash;
    for (const n of Object.keys(pages())) if (pages()[n].match(h)) return n;
    if (h === '#/settings/pop3/general') return 'general';
    if (h === '#/settings/pop3/users') return 'users';
    if (h === '#/sessions') return 'sessions';
    return 'dashboard';
  }

  async function render(name) {
    try {
      if (pages()[name]) await pages()[name].render(pageCtx);
      else await views[name]();
    } catch (e) {
      // Logged out meanwhile: the login view is showing.
    }
  }

  function showView(name) {
    for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== 'view-' + name;
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === name);
  }

  async function go() {
    if (!state.csrf) return;
    const prev = state.view;
    state.view = routeView();
    // Coming back to the form: what is in effect, not an old draft.
    if (state.view !== prev) state.generalDirty = false;
    showView(state.view);
    await render(state.view);
  }

  // ---- live updates (Server-Sent Events)

  function setLive(on) {
    state.live = on;
    const el = $('#live');
    el.classList.toggle('on', on);
    el.textContent = t(on ? 'live.on' : 'live.off');
  }

  function startEvents() {
    stopEvents();
    const es = new EventSource('/api/v1/events');
    state.events = es;
    es.addEventListener('hello', () => setLive(true));
    es.addEventListener('heartbeat', () => {
      if (state.view === 'dashboard') render('dashboard');
    });
    es.addEventListener('changed', (ev) => {
      let what = '';
      try { what = JSON.parse(ev.data).what; } catch (e) { what = ''; }
      if (what === 'settings') state.settings = null;
      // A session's commands change the Sessions page, not the Users one.
      if (what === 'sessions' && state.view !== 'dashboard' && state.view !== 'sessions') return;
      if (state.view) render(state.view);
    });
    es.onerror = () => setLive(false);
  }

  function stopEvents() {
    if (state.events) state.events.close();
    state.events = null;
    setLive(false);
  }

  // ---- login / logout

  function showLogin() {
    state.csrf = null;
    state.view = null;
    state.settings = null;
    localStorage.removeItem('posuto.loggedIn');
    stopEvents();
    $('#nav').hidden = true;
    $('#logout').hidden = true;
    showView('login');
    $('#password').focus();
  }

  function loggedIn(csrf, version) {
    state.csrf = csrf;
    localStorage.setItem('posuto.loggedIn', '1');
    $('#nav').hidden = false;
    $('#logout').hidden = false;
    if (version) $('#version').textContent = 'posuto ' + version;
    startEvents();
    if (!location.hash || location.hash === '#/login') location.hash = '#/dashboard';
    go();
  }

  async function onLogin(ev) {
    ev.preventDefault();
    const err = $('#login-error');
    err.textContent = '';
    const r = await api('/api/v1/login', { method: 'POST', body: { password: $('#password').value } });
    $('#password').value = '';
    if (r.status === 200 && r.data && r.data.csrf) {
      const me = await api('/api/v1/me');
      loggedIn(r.data.csrf, me.data && me.data.version);
    } else if (r.status === 429) {
      err.textContent = t('login.limited', { s: r.headers.get('Retry-After') || '?' });
    } else if (r.status === 401) {
      err.textContent = t('login.wrong');
    } else {
      err.textContent = t('login.failed');
    }
  }

  async function onLogout() {
    stopEvents();
    try { await api('/api/v1/logout', { method: 'POST', body: {} }); } catch (e) { /* gone already */ }
    showLogin();
  }

  // ---- start

  document.addEventListener('DOMContentLoaded', async () => {
    $('#lang').addEventListener('change', () => {
      state.lang = $('#lang').value === 'ja' ? 'ja' : 'en';
      localStorage.setItem('posuto.lang', state.lang);
      applyLanguage();
    });
    $('#login-form').addEventListener('submit', onLogin);
    $('#logout').addEventListener('click', onLogout);
    $('#general-form').addEventListener('submit', onGeneralSave);
    $('#listen-add').addEventListener('click', () => {
      $('#listen-table').tBodies[0].appendChild(listenRow({ Protocol: 'pop3', Address: '127.0.0.1', Tls: 'none' }));
      state.generalDirty = true;
    });
    $('#user-add-form').addEventListener('submit', onUserAdd);
    $('#user-edit-form').addEventListener('submit', onUserEdit);
    $('#user-edit-cancel').addEventListener('click', () => { $('#user-edit-form').hidden = true; state.editUser = null; });
    window.addEventListener('hashchange', go);
    applyLanguage();
    // Ask the server only if this browser logged in before: a first
    // visit shows the form without a request that is sure to be refused.
    if (localStorage.getItem('posuto.loggedIn') === '1') {
      try {
        const me = await api('/api/v1/me');
        if (me.status === 200 && me.data && me.data.csrf) {
          loggedIn(me.data.csrf, me.data.version);
          return;
        }
      } catch (e) { /* showLogin already ran */ return; }
    }
    showLogin();
  });
})();
