// posuto web admin: the Tools page (issue 14): fault injection for people
// who test mail clients, and the settings a mail client needs (typed by
// hand, or as a QR code of the Apple profile's address).
//
// Same rule as app.js: every value goes in through textContent or a DOM
// attribute.  The QR code is drawn as SVG rectangles from the vendored
// generator's module matrix (vendor/qrcode.js), not as markup.
'use strict';

(function () {
  const $ = (sel) => document.querySelector(sel);
  let ctx = null;
  let wired = false;
  const t = (k, v) => ctx.t(k, v);

  // The one number each kind takes (posuto.json(5), Pop3Server.Faults).
  const KINDS = {
    'in-use': null, 'temp-fail': 'Command', 'login-delay': 'Seconds',
    'throttle': 'BytesPerSecond', 'drop': 'AfterBytes', 'delay': 'Milliseconds',
    'wrong-size': 'Message', 'uidl-drift': 'Message',
  };

  async function settings() {
    const r = await ctx.api('/api/v1/settings');
    return r.data || {};
  }

  // A fault as the file holds it: only the keys its kind uses.
  function clean(f) {
    const o = { User: f.User, Kind: f.Kind };
    const key = KINDS[f.Kind];
    if (key && f[key]) o[key] = Number(f[key]);
    return o;
  }

  async function saveFaults(list) {
    const r = await ctx.api('/api/v1/settings', {
      method: 'PUT', body: { Pop3Server: { Faults: list.map(clean) } },
    });
    const ok = r.status === 200;
    const s = $('#faults-status');
    s.textContent = ok ? t('faults.saved') : ((r.data && r.data.error) || String(r.status));
    s.classList.toggle('bad', !ok);
    return ok;
  }

  function faultRows(list) {
    const body = $('#faults-table').tBodies[0];
    body.replaceChildren();
    if (list.length === 0) {
      const tr = ctx.el('tr');
      const td = ctx.el('td', t('faults.none'));
      td.colSpan = 4;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    list.forEach((f, i) => {
      const tr = ctx.el('tr');
      const key = KINDS[f.Kind];
      tr.appendChild(ctx.el('td', f.User));
      tr.appendChild(ctx.el('td', t('fault.' + f.Kind)));
      tr.appendChild(ctx.el('td', key && f[key] ? key + ' ' + f[key] : ''));
      const td = ctx.el('td');
      const b = ctx.el('button', t('remove'), 'secondary');
      b.type = 'button';
      b.dataset.fault = String(i);
      b.addEventListener('click', async () => {
        const cur = await currentFaults();
        cur.splice(i, 1);
        if (await saveFaults(cur)) await draw();
      });
      td.appendChild(b);
      tr.appendChild(td);
      body.appendChild(tr);
    });
  }

  async function currentFaults() {
    const s = await settings();
    return ((s.Pop3Server && s.Pop3Server.Faults) || []).map(clean);
  }

  function kindChanged() {
    const key = KINDS[$('#fault-kind').value];
    const n = $('#fault-number');
    n.disabled = !key;
    n.placeholder = key || '';
    if (!key) n.value = '';
  }

  // ---- client setup: what Thunderbird's autoconfig says, shown by hand

  const SECURITY = { SSL: 'setup.tls', STARTTLS: 'setup.starttls', plain: 'setup.plain' };

  function setupRow(body, label, value) {
    const tr = ctx.el('tr');
    tr.appendChild(ctx.el('th', label));
    tr.appendChild(ctx.el('td', value));
    body.appendChild(tr);
  }

  function drawQr(text) {
    const box = $('#setup-qr');
    box.replaceChildren();
    if (typeof window.qrcode !== 'function') return;
    const qr = window.qrcode(0, 'M');
    qr.addData(text);
    qr.make();
    const n = qr.getModuleCount();
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '-4 -4 ' + (n + 8) + ' ' + (n + 8));
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', text);
    svg.dataset.modules = String(n);
    const bg = document.createElementNS(NS, 'rect');
    for (const [k, v] of [['x', -4], ['y', -4], ['width', n + 8], ['height', n + 8], ['fill', '#fff']])
      bg.setAttribute(k, String(v));
    svg.appendChild(bg);
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) {
        if (!qr.isDark(r, c)) continue;
        const m = document.createElementNS(NS, 'rect');
        m.setAttribute('x', String(c));
        m.setAttribute('y', String(r));
        m.setAttribute('width', '1');
        m.setAttribute('height', '1');
        svg.appendChild(m);
      }
    }
    box.appendChild(svg);
    box.appendChild(ctx.el('p', text, 'mono'));
  }

  async function drawSetup() {
    const email = $('#setup-email').value.trim();
    const body = $('#setup-table').tBodies[0];
    const status = $('#setup-status');
    body.replaceChildren();
    $('#setup-qr').replaceChildren();
    status.textContent = '';
    const q = email ? '?emailaddress=' + encodeURIComponent(email) : '';
    const r = await fetch('/mail/config-v1.1.xml' + q, { credentials: 'same-origin' });
    if (r.status !== 200) {
      status.textContent = t('setup.unavailable') + ' (' + r.status + ')';
      status.classList.add('bad');
      return;
    }
    status.classList.remove('bad');
    const doc = new DOMParser().parseFromString(await r.text(), 'application/xml');
    const text = (n, sel) => { const e = n.querySelector(sel); return e ? e.textContent : ''; };
    const local = email.includes('@') ? email.slice(0, email.lastIndexOf('@')) : email;
    const user = (u) => u.replace('%EMAILLOCALPART%', local || '…').replace('%EMAILADDRESS%', email || '…');
    for (const s of doc.querySelectorAll('incomingServer')) {
      setupRow(body, t('setup.pop3'), text(s, 'hostname') + ':' + text(s, 'port') + ' — ' +
        t(SECURITY[text(s, 'socketType')] || 'setup.plain'));
    }
    const inc = doc.querySelector('incomingServer');
    if (inc) setupRow(body, t('setup.username'), user(text(inc, 'username')));
    const out = doc.querySelector('outgoingServer');
    if (out) {
      setupRow(body, t('setup.smtp'), text(out, 'hostname') + ':' + text(out, 'port') + ' — ' +
        t(SECURITY[text(out, 'socketType')] || 'setup.plain') + ', ' +
        (text(out, 'authentication') === 'none' ? t('setup.noauth') : t('setup.auth')));
    }
    const s = await settings();
    const ac = (s.Admin && s.Admin.Autoconfig) || {};
    // Phones cannot reach a loopback admin: the profile's own listener
    // when there is one.
    const origin = ac.Port ? location.protocol.replace('https', 'http') + '//' + location.hostname + ':' + ac.Port : location.origin;
    const url = origin + '/mobileconfig' + (email ? '?email=' + encodeURIComponent(email) : '');
    drawQr(url);
    const a = $('#setup-profile');
    a.href = '/mobileconfig' + (email ? '?email=' + encodeURIComponent(email) : '');
  }

  function wire() {
    if (wired) return;
    wired = true;
    const kind = $('#fault-kind');
    for (const k of Object.keys(KINDS)) {
      const o = ctx.el('option', t('fault.' + k));
      o.value = k;
      kind.appendChild(o);
    }
    kind.addEventListener('change', kindChanged);
    $('#fault-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const f = { User: $('#fault-user').value.trim(), Kind: kind.value };
      const key = KINDS[f.Kind];
      if (key && $('#fault-number').value !== '') f[key] = Number($('#fault-number').value);
      const cur = (await currentFaults()).filter((x) => !(x.User === f.User && x.Kind === f.Kind));
      cur.push(f);
      if (await saveFaults(cur)) await draw();
    });
    $('#setup-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      await drawSetup();
    });
    kindChanged();
  }

  async function draw() {
    const s = await settings();
    faultRows(((s.Pop3Server && s.Pop3Server.Faults) || []).map(clean));
    $('#faults-remote').textContent = s.Pop3Server && s.Pop3Server.FaultsForRemoteClients ?
      t('faults.remote_on') : t('faults.remote_off');
  }

  window.POSUTO_PAGES = window.POSUTO_PAGES || {};
  window.POSUTO_PAGES.tools = {
    match: (hash) => hash === '#/tools',
    render: async (c) => {
      ctx = c;
      wire();
      await draw();
      await drawSetup();
    },
  };
})();
