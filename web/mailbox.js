// posuto web admin: the Mailboxes page (issue 12).
//
// Same rule as app.js: everything from a mail or a user (names, From,
// Subject, headers, file names, raw source) goes into the page through
// textContent or a DOM attribute, never as HTML.  A mail's HTML part is
// shown only inside <iframe sandbox> (empty: no script, no
// same-origin access), loaded from its own route, whose policy
// (default-src 'none'; img-src data:) forbids script and remote images
// until the user asks for them.
'use strict';

(function () {
  const PAGE = 50;
  const $ = (sel) => document.querySelector(sel);
  const st = {
    user: null, offset: 0, total: 0, filters: {}, open: null, tab: 'html',
    remote: false, wired: false, rendering: false, again: false,
    gone: new Set(),    // deleted from this page: never asked for again
  };
  let ctx = null;
  const t = (k, v) => ctx.t(k, v);
  const enc = encodeURIComponent;
  const base = () => '/api/v1/mailboxes/' + enc(st.user);

  function userFromHash() {
    const m = /^#\/mailboxes\/([^/]+)/.exec(location.hash);
    if (!m) return null;
    try { return decodeURIComponent(m[1]); } catch (e) { return null; }
  }

  function size(n) {
    if (n === null || n === undefined) return t('none');
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1048576).toFixed(1) + ' MiB';
  }

  function when(s) {
    return s ? new Date(s * 1000).toLocaleString(ctx.lang()) : t('none');
  }

  function status(text, bad) {
    const s = $('#mbx-status');
    s.textContent = text || '';
    s.classList.toggle('error', !!bad);
  }

  // "retrieved by session S at T" etc., one line each
  function pop3State(state) {
    const out = [];
    if (state.retrieved) out.push(t('mbx.state.retrieved', { s: state.retrieved.session, t: when(state.retrieved.at) }));
    if (state.marked) out.push(t('mbx.state.marked', { s: state.marked.session }));
    if (state.deleted) out.push(t('mbx.state.deleted', { s: state.deleted.session, t: when(state.deleted.at) }));
    return out;
  }

  function stateCell(state) {
    const td = ctx.el('td', null, 'mbx-state');
    for (const line of pop3State(state || {})) td.appendChild(ctx.el('div', line));
    return td;
  }

  async function renderBoxes() {
    const r = await ctx.api('/api/v1/mailboxes');
    const rows = (r.data && r.data.mailboxes) || [];
    const body = $('#mbx-boxes').tBodies[0];
    body.replaceChildren();
    if (!rows.length) {
      const tr = ctx.el('tr');
      const td = ctx.el('td', t('users.none'), 'placeholder');
      td.colSpan = 3;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    for (const b of rows) {
      const tr = ctx.el('tr');
      const td = ctx.el('td');
      const a = ctx.el('a', b.user);
      a.href = '#/mailboxes/' + enc(b.user);
      if (b.user === st.user) tr.className = 'selected';
      td.appendChild(a);
      tr.appendChild(td);
      tr.appendChild(ctx.el('td', b.error ? t('mbx.err.' + b.error) : ctx.show(b.count)));
      tr.appendChild(ctx.el('td', size(b.size)));
      body.appendChild(tr);
    }
  }

  function query() {
    const p = new URLSearchParams();
    p.set('offset', String(st.offset));
    p.set('limit', String(PAGE));
    for (const [k, v] of Object.entries(st.filters)) if (v) p.set(k, v);
    return p.toString();
  }

  async function renderList() {
    const r = await ctx.api(base() + '/messages?' + query());
    const body = $('#mbx-list').tBodies[0];
    body.replaceChildren();
    if (r.status !== 200) {
      status((r.data && r.data.error) || t('mbx.err.load'), true);
      return;
    }
    const d = r.data;
    st.total = d.total;
    st.page = d.messages;
    if (!d.messages.length) {
      const tr = ctx.el('tr');
      const td = ctx.el('td', t('mbx.empty'), 'placeholder');
      td.colSpan = 6;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    for (const m of d.messages) {
      const tr = ctx.el('tr', null, 'mbx-row');
      tr.dataset.uidl = m.uidl;
      if (st.open === m.uidl) tr.classList.add('selected');
      tr.appendChild(ctx.el('td', when(m.date)));
      tr.appendChild(ctx.el('td', m.from));
      const subj = ctx.el('td');
      const a = ctx.el('a', m.subject || t('mbx.no_subject'), 'mbx-subject');
      a.href = '#/mailboxes/' + enc(st.user) + '/' + enc(m.uidl);
      subj.appendChild(a);
      tr.appendChild(subj);
      tr.appendChild(ctx.el('td', size(m.size)));
      tr.appendChild(ctx.el('td', m.uidl, 'mono'));
      tr.appendChild(stateCell(m.state));
      body.appendChild(tr);
    }
    const last = Math.min(st.offset + PAGE, d.total);
    $('#mbx-range').textContent = d.total ? t('mbx.range', { a: st.offset + 1, b: last, n: d.total }) : '';
    $('#mbx-prev').disabled = st.offset === 0;
    $('#mbx-next').disabled = last >= d.total;
    if (!d.complete) { status(t('mbx.indexing', { n: d.indexed, m: d.count })); st.indexing = true; }
    else if (st.indexing) { status(''); st.indexing = false; }
    const dl = $('#mbx-deleted');
    dl.replaceChildren();
    for (const g of d.deleted || []) {
      dl.appendChild(ctx.el('li', t('mbx.state.deleted', { s: g.session, t: when(g.at) }) +
        ' — ' + (g.subject || g.uidl)));
    }
  }

  function metaRow(tbody, key, value) {
    if (value === null || value === undefined || value === '') return;
    const tr = ctx.el('tr');
    tr.appendChild(ctx.el('th', key));
    tr.appendChild(ctx.el('td', value));
    tbody.appendChild(tr);
  }

  async function showTab(msg) {
    const pane = $('#mbx-pane');
    const url = base() + '/messages/' + enc(msg.uidl);
    for (const b of document.querySelectorAll('#mbx-tabs button')) {
      b.classList.toggle('active', b.dataset.tab === st.tab);
      if (b.dataset.tab === 'html') b.disabled = !msg.html;
      if (b.dataset.tab === 'text') b.disabled = msg.text === null;
    }
    pane.replaceChildren();
    if (st.tab === 'html' && msg.html) {
      const bar = ctx.el('div', null, 'mbx-remote');
      const btn = ctx.el('button', t(st.remote ? 'mbx.remote_on' : 'mbx.remote'));
      btn.type = 'button';
      btn.id = 'mbx-remote';
      btn.disabled = st.remote;
      btn.addEventListener('click', () => { st.remote = true; showTab(msg); });
      bar.appendChild(btn);
      pane.appendChild(bar);
      const f = document.createElement('iframe');
      // An empty sandbox grants nothing: the mail runs nothing
      // and reaches nothing of ours, whatever it holds.
      f.setAttribute('sandbox', '');
      f.setAttribute('referrerpolicy', 'no-referrer');
      f.title = t('mbx.tab.html');
      f.className = 'mbx-frame';
      f.src = url + '/html' + (st.remote ? '?remote=1' : '');
      pane.appendChild(f);
    } else if (st.tab === 'text' || (st.tab === 'html' && !msg.html)) {
      pane.appendChild(ctx.el('pre', msg.text === null ? t('mbx.no_text') : msg.text, 'mbx-text'));
    } else if (st.tab === 'headers') {
      const tb = ctx.el('table', null, 'kv');
      const body = ctx.el('tbody');
      for (const [k, v] of msg.headers) metaRow(body, k, v);
      tb.appendChild(body);
      pane.appendChild(tb);
    } else if (st.tab === 'raw') {
      const r = await fetch(url + '/raw', { credentials: 'same-origin' });
      pane.appendChild(ctx.el('pre', r.ok ? await r.text() : t('mbx.err.load'), 'mbx-text mbx-raw'));
    } else if (st.tab === 'attachments') {
      const ul = ctx.el('ul', null, 'mbx-atts');
      if (!msg.attachments.length) ul.appendChild(ctx.el('li', t('mbx.no_attachments')));
      for (const a of msg.attachments) {
        const li = ctx.el('li');
        const link = ctx.el('a', a.filename);
        link.href = url + '/parts/' + a.n;
        link.setAttribute('download', a.filename);
        li.appendChild(link);
        li.appendChild(ctx.el('span', ' ' + a.type + ', ' + size(a.size), 'muted'));
        ul.appendChild(li);
      }
      pane.appendChild(ul);
    }
  }

  async function renderMessage(uidl) {
    const box = $('#mbx-message');
    if (!uidl || st.gone.has(uidl)) { box.hidden = true; st.open = null; return; }
    const r = await ctx.api(base() + '/messages/' + enc(uidl));
    if (r.status !== 200) {
      box.hidden = true;
      st.open = null;
      if (r.status === 404) status(t('mbx.gone'));
      return;
    }
    const msg = r.data;
    if (st.open !== uidl) { st.remote = false; st.tab = msg.html ? 'html' : 'text'; }
    st.open = uidl;
    st.msg = msg;
    box.hidden = false;
    $('#mbx-msg-subject').textContent = msg.subject || t('mbx.no_subject');
    const meta = $('#mbx-msg-meta').tBodies[0];
    meta.replaceChildren();
    metaRow(meta, t('mbx.from'), msg.from);
    metaRow(meta, t('mbx.to'), msg.to);
    metaRow(meta, t('mbx.cc'), msg.cc);
    metaRow(meta, t('mbx.date'), when(msg.date));
    metaRow(meta, t('mbx.size'), size(msg.size));
    metaRow(meta, 'UIDL', msg.uidl);
    metaRow(meta, t('mbx.pop3'), pop3State(msg.state).join(' / '));
    await showTab(msg);
  }

  async function onDelete() {
    if (!st.open) return;
    const uidl = st.open;
    const r = await ctx.api(base() + '/messages/' + enc(uidl), { method: 'DELETE' });
    if (r.status === 200) {
      status(t('mbx.deleted_ok'));
      st.gone.add(uidl);
      st.open = null;
      st.msg = null;
      $('#mbx-message').hidden = true;
      location.hash = '#/mailboxes/' + enc(st.user);
    } else if (r.status === 409) {
      status(t('mbx.in_use'), true);
    } else {
      status((r.data && r.data.error) || t('mbx.err.delete'), true);
    }
  }

  async function onUpload(ev) {
    const f = ev.target.files && ev.target.files[0];
    ev.target.value = '';
    if (!f) return;
    const r = await fetch(base() + '/messages', {
      method: 'POST', credentials: 'same-origin', body: f,
      headers: { 'Content-Type': 'message/rfc822', 'X-CSRF-Token': ctx.csrf() },
    });
    if (r.status === 201) status(t('mbx.uploaded', { name: f.name }));
    else if (r.status === 413) status(t('mbx.too_large'), true);
    else {
      let e = null;
      try { e = (await r.json()).error; } catch (x) { e = null; }
      status(e || t('mbx.err.upload'), true);
    }
    await draw();
  }

  function wire() {
    if (st.wired) return;
    st.wired = true;
    $('#mbx-search').addEventListener('submit', (ev) => {
      ev.preventDefault();
      st.filters = {
        q: $('#mbx-q').value.trim(), from: $('#mbx-from').value.trim(),
        subject: $('#mbx-subject').value.trim(), since: $('#mbx-since').value,
        until: $('#mbx-until').value,
      };
      st.offset = 0;
      draw();
    });
    $('#mbx-prev').addEventListener('click', () => { st.offset = Math.max(0, st.offset - PAGE); draw(); });
    $('#mbx-next').addEventListener('click', () => { st.offset += PAGE; draw(); });
    $('#mbx-delete').addEventListener('click', onDelete);
    $('#mbx-upload').addEventListener('change', onUpload);
    for (const b of document.querySelectorAll('#mbx-tabs button')) {
      b.addEventListener('click', () => { st.tab = b.dataset.tab; if (st.msg) showTab(st.msg); });
    }
  }

  // One drawing at a time; live events that arrive meanwhile redraw once
  // more afterwards (a burst of deliveries is one extra request, not many).
  async function draw() {
    if (st.rendering) { st.again = true; return; }
    st.rendering = true;
    try {
      do {
        st.again = false;
        await drawOnce();
      } while (st.again);
    } finally {
      st.rendering = false;
    }
  }

  async function drawOnce() {
    for (const e of document.querySelectorAll('#view-mailboxes [data-i18n-placeholder]')) {
      e.placeholder = t(e.dataset.i18nPlaceholder);
    }
    const user = userFromHash();
    if (user !== st.user) {
      st.user = user; st.offset = 0; st.open = null; st.filters = {};
      status('');
      for (const id of ['#mbx-q', '#mbx-from', '#mbx-subject', '#mbx-since', '#mbx-until']) $(id).value = '';
    }
    const m = /^#\/mailboxes\/[^/]+\/(.+)$/.exec(location.hash);
    let uidl = null;
    if (m) { try { uidl = decodeURIComponent(m[1]); } catch (e) { uidl = null; } }
    await renderBoxes();
    const main = $('#mbx-main');
    main.hidden = !st.user;
    const c = await ctx.api('/api/v1/csp-reports');
    if (c.status === 200) $('#mbx-csp').textContent = t('mbx.csp_counts', c.data);
    if (!st.user) return;
    $('#mbx-title').textContent = st.user;
    const dl = $('#mbx-download');
    dl.href = base() + '/download';
    dl.setAttribute('download', st.user + '.mbox');
    await renderList();
    // The open message is drawn again only when it changes: a live
    // update must not reload the frame the user is reading.
    if (uidl !== st.open || !uidl) await renderMessage(uidl);
    else if (st.msg) {
      // its POP3 state from the list, when it is on this page
      const m2 = (st.page || []).find((x) => x.uidl === uidl);
      if (m2) {
        const meta = $('#mbx-msg-meta').tBodies[0];
        const last = meta.rows[meta.rows.length - 1];
        const line = pop3State(m2.state).join(' / ');
        if (last && last.cells[0].textContent === t('mbx.pop3')) last.cells[1].textContent = line;
        else metaRow(meta, t('mbx.pop3'), line);
      }
    }
  }

  window.POSUTO_PAGES = window.POSUTO_PAGES || {};
  window.POSUTO_PAGES.mailboxes = {
    match: (hash) => hash === '#/mailboxes' || hash.startsWith('#/mailboxes/'),
    render: async (c) => {
      ctx = c;
      wire();
      await draw();
    },
  };
})();
