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
      const [c, s] = await Promise.all([api('/api/v1/counters'), api('/api/v1/sessions')]);
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
      fillRows($('#counters-table'), metrics.map((m) =>
        [t('metric.' + m.name) + (m.label ? ' (' + m.label.replace(/\w+="([^"]*)"/g, '$1') + ')' : ''),
          show(m.value)]), t('none'));
    },

    async general() {
      const r = await api('/api/v1/settings');
      state.settings = r.data;
      const pop = (r.data && r.data.Pop3Server) || {};
      const rows = [];
      rows.push([t('set.Listen'), (pop.Listen || []).map((l) =>
        l.Address + ' ' + l.Port + ' (' + t('tls.' + l.Tls) + ')').join(', ')]);
      const tls = pop.Tls || {};
      rows.push([t('set.Tls.Certificate'), show(tls.Certificate)]);
      rows.push([t('set.Tls.Key'), show(tls.Key)]);
      rows.push([t('set.Tls.MinVersion'), show(tls.MinVersion)]);
      for (const k of ['TimeOut', 'SessionTimeOut', 'LineTimeOut', 'MailDir', 'MailboxPath',
        'MailboxFormat', 'PasswdFile', 'MaxConnections', 'MaxConnectionsPerIp',
        'MaxConnectRatePerIp', 'MaxBadCommands', 'AuthFailDelay', 'LoginDelay', 'Expire',
        'AllowPlaintextAuth', 'SaslMechanisms', 'Hostname', 'RunAsUser', 'WorkerThreads',
        'LogLevel']) {
        if (k in pop) rows.push([t('set.' + k), show(pop[k])]);
      }
      rows.push([t('set.user_count'), show(r.data && r.data.user_count)]);
      const body = $('#general-table').tBodies[0];
      body.replaceChildren();
      for (const [k, v] of rows) {
        const tr = el('tr');
        tr.appendChild(el('th', k));
        tr.appendChild(el('td', v));
        body.appendChild(tr);
      }
    },

    async users() {
      const r = await api('/api/v1/users');
      const users = (r.data && r.data.users) || [];
      fillRows($('#users-table'), users.map((u) =>
        [u.name, show(u.mailbox), u.format, show(u.scheme), show(u.apop), show(u.origin)]),
        t('users.none'));
    },
  };

  // Pages defined in their own files (mailbox.js): window.POSUTO_PAGES[name]
  // = { match(hash), render(ctx) }, with the helpers they may use.
  const pages = () => window.POSUTO_PAGES || {};
  const pageCtx = { api, t, el, show, csrf: () => state.csrf, lang: () => state.lang };

  function routeView() {
    const h = location.hash;
    for (const n of Object.keys(pages())) if (pages()[n].match(h)) return n;
    if (h === '#/settings/pop3/general') return 'general';
    if (h === '#/settings/pop3/users') return 'users';
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
    state.view = routeView();
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
