// The web admin's editing pages end to end in headless Chromium: add a user
// on the Users page, log in as that user with Python's poplib and see the
// session live on the dashboard, kick it from the Sessions page, change the
// idle timeout on Settings › POP3 › General (a bad value is refused next to
// its field) and see a new POP3 session get it, switch to English.
// Screenshots go to build/artifacts/ (admin-edit-*.png).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import * as h from './harness.mjs';

const ADMIN_PW = 'browser-edit-admin-pw';
const NEW_USER = 'newbie';
const NEW_PW = 'newbie-pw-1';

let tmp, cfgPath, server, b, page, adminUrl, pop3Port, pageErrors;
const clients = [];

// poplib in a python3 child: logs in, says so, then waits (bounded by the
// socket timeout) for whatever line the server sends by itself (a kick, an
// autologout) and prints it.
const POPLIB = `
import poplib, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=60)
p.user(sys.argv[2]); p.pass_(sys.argv[3])
print("logged-in", flush=True)
try:
    line = p.file.readline()
except Exception as e:
    line = ("error " + str(e)).encode()
print("server:", line.decode(errors="replace").strip(), flush=True)
`;

function poplibClient(user, pw) {
  const child = spawn('python3', ['-c', POPLIB, String(pop3Port), user, pw],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  clients.push(child);
  const lines = [];
  const waiters = [];
  readline.createInterface({ input: child.stdout }).on('line', (l) => {
    lines.push(l);
    for (const w of waiters.splice(0)) w();
  });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  return {
    async waitLine(prefix, ms = 30000) {
      const deadline = Date.now() + ms;
      for (let i = 0; i < 1000; i++) {
        const hit = lines.find((l) => l.startsWith(prefix));
        if (hit !== undefined) return hit;
        if (Date.now() > deadline) break;
        await new Promise((r) => { waiters.push(r); setTimeout(r, 200); });
      }
      assert.fail('poplib: no line ' + prefix + ' (got ' + JSON.stringify(lines) + ', stderr ' + err + ')');
    },
  };
}

const shot = (name) => h.shot(page, 'admin-edit-' + name);

before(async () => {
  tmp = h.tempDir('posuto-browser-edit-');
  pop3Port = await h.freePort();
  const adminPort = await h.freePort();
  cfgPath = h.writeConfig(tmp, {
    Pop3Server: {
      BindAddress: '127.0.0.1', Port: pop3Port, MailDir: path.join(tmp, 'mail'), AuthFailDelay: 0,
      TimeOut: 600, LockFile: path.join(tmp, 'posuto.lock'),
      Users: [{ UserName: 'user1', Password: 'password', HashType: 'PLAIN' }],
    },
    Admin: { Port: adminPort, PasswordHash: h.adminHash(ADMIN_PW) },
  });
  server = await h.startServer(cfgPath, tmp);
  adminUrl = 'http://127.0.0.1:' + adminPort + '/';
  // Deleting asks first; this test says yes.
  b = await h.openBrowser({ locale: 'ja-JP', viewport: { width: 1200, height: 900 },
    onDialog: (d) => d.accept() });
  ({ page, pageErrors } = b);
  await h.adminLogin(page, adminUrl, ADMIN_PW);
  await page.waitForSelector('#live.on');
});

after(async () => {
  for (const c of clients) if (c.exitCode === null) c.kill();
  await h.cleanup({ browser: b && b.browser, server, dir: tmp });
});

test('adds a user on the Users page; it is in the config file', async () => {
  await page.click('#nav a[data-view=users]');
  await page.waitForSelector('#view-users:not([hidden])');
  await page.waitForFunction(() => document.querySelectorAll('#users-table tbody tr[data-user]').length === 1);
  await page.fill('#user-add-name', NEW_USER);
  await page.fill('#user-add-password', NEW_PW);
  await page.selectOption('#user-add-scheme', 'SHA512-CRYPT');
  await page.click('#user-add-submit');
  await page.waitForSelector('#users-table tbody tr[data-user="' + NEW_USER + '"]');
  const row = await page.textContent('#users-table tbody tr[data-user="' + NEW_USER + '"]');
  assert.ok(row.includes('SHA512-CRYPT'), row);
  const file = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
  const u = file.Pop3Server.Users.find((x) => x.UserName === NEW_USER);
  assert.ok(u && u.Password.startsWith('{SHA512-CRYPT}'), JSON.stringify(u));
  assert.ok(!fs.readFileSync(cfgPath, 'utf8').includes(NEW_PW));
  await shot('users-added-ja');
});

test('the new user logs in with poplib; the session shows live, then is kicked', async () => {
  await page.click('#nav a[data-view=dashboard]');
  await page.waitForSelector('#view-dashboard:not([hidden])');
  const c = poplibClient(NEW_USER, NEW_PW);
  await c.waitLine('logged-in');
  await page.waitForFunction((u) => [...document.querySelectorAll('#sessions-table tbody td')]
    .some((td) => td.textContent === u), NEW_USER, { timeout: 20000 });
  await page.waitForFunction(() => Number(document.querySelector('.chart .k-logins').dataset.total) >= 1,
    null, { timeout: 20000 });
  await shot('dashboard-session-ja');

  await page.click('#nav a[data-view=sessions]');
  await page.waitForSelector('#view-sessions:not([hidden])');
  const sel = '#live-sessions-table tbody tr[data-user="' + NEW_USER + '"]';
  await page.waitForSelector(sel, { timeout: 20000 });
  // Its commands, the password redacted.
  const hist = await page.textContent(sel + ' pre.history');
  assert.ok(hist.includes('USER ' + NEW_USER) && hist.includes('PASS ****'), hist);
  assert.ok(!hist.includes(NEW_PW), hist);
  await shot('sessions-ja');
  await page.click(sel + ' button.kick');
  const line = await c.waitLine('server:');
  assert.match(line, /^server: -ERR /);
  await page.waitForSelector(sel, { state: 'detached', timeout: 20000 });
});

test('a bad idle timeout is refused next to its field, the file unchanged', async () => {
  await page.click('#nav a[data-view=general]');
  await page.waitForSelector('#view-general:not([hidden])');
  await page.waitForSelector('#set-TimeOut');
  assert.equal(await page.inputValue('#set-TimeOut'), '600');
  const before = fs.readFileSync(cfgPath, 'utf8');
  await page.fill('#set-TimeOut', '0');
  await page.click('#general-save');
  await page.waitForFunction(() =>
    document.querySelector('[data-error-for="Pop3Server.TimeOut"]').textContent !== '');
  const msg = await page.textContent('[data-error-for="Pop3Server.TimeOut"]');
  assert.match(msg, /1\.\.86400/);
  assert.equal(await page.getAttribute('#set-TimeOut', 'class'), 'invalid');
  assert.equal(fs.readFileSync(cfgPath, 'utf8'), before);
  await shot('general-invalid-ja');
});

test('a changed idle timeout applies to a new POP3 session', async () => {
  await page.fill('#set-TimeOut', '3');
  await page.click('#general-save');
  // "Saved and applied." (not "Saving…"): the reply is in.
  await page.waitForFunction(() => document.querySelector('#general-status').textContent ===
    '保存して反映しました。', null, { timeout: 20000 });
  assert.equal(await page.inputValue('#set-TimeOut'), '3');
  assert.equal(JSON.parse(fs.readFileSync(cfgPath, 'utf8')).Pop3Server.TimeOut, 3);
  const c = poplibClient('user1', 'password');
  await c.waitLine('logged-in');
  // The server ends it by itself, idle for 3 s (bounded by poplib's 60 s).
  const line = await c.waitLine('server:', 60000);
  assert.match(line, /^server: -ERR .*idle/i);
});

test('switches to English', async () => {
  await page.selectOption('#lang', 'en');
  await page.waitForFunction(() => document.querySelector('label[for=set-TimeOut]').textContent === 'Idle timeout (s)');
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  await page.click('#nav a[data-view=users]');
  await page.waitForSelector('#users-table tbody tr[data-user="' + NEW_USER + '"]');
  assert.equal(await page.textContent('#user-add-submit'), 'Add');
  await shot('users-en');
  assert.deepEqual(pageErrors, []);
});
