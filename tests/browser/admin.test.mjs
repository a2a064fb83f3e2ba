// The web admin end to end in Debian's headless Chromium, driven by
// playwright-core (no browser download: executablePath /usr/bin/chromium).
// Starts its own posuto (POSUTO_BIN, default build/posuto) on free ports,
// and saves screenshots to build/artifacts/.
//
//   node --test tests/browser/        (scripts/check.sh runs it)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import * as h from './harness.mjs';

const ADMIN_PW = 'browser-admin-pw';
const XSS_USER = '<b>bold<i>';                       // a valid user name that is markup
const XSS_IMG = '<img src=x onerror=alert(1)>';      // no spaces in user names: via MailDir

let tmp, server, b, page, adminUrl, pop3Port, consoleMsgs, pageErrors, dialogs;
const until = h.until;

// A POP3 client that logs in and stays (for the live session count).
function pop3Login(port) {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ host: '127.0.0.1', port });
    const steps = ['USER user1\r\n', 'PASS password\r\n'];
    let buf = '';
    s.setTimeout(30000, () => reject(new Error('pop3 timeout')));
    s.on('data', (d) => {
      buf += d;
      while (buf.includes('\r\n')) {
        const line = buf.slice(0, buf.indexOf('\r\n'));
        buf = buf.slice(buf.indexOf('\r\n') + 2);
        if (!line.startsWith('+OK')) { reject(new Error('pop3: ' + line)); return; }
        if (steps.length) s.write(steps.shift());
        else { resolve(s); return; }
      }
    });
    s.on('error', reject);
  });
}

const shot = (name) => h.shot(page, 'admin-' + name);

before(async () => {
  tmp = h.tempDir('posuto-browser-');
  const maildir = path.join(tmp, 'mail ' + XSS_IMG);
  h.maildir(maildir, 'user1');
  pop3Port = await h.freePort();
  const adminPort = await h.freePort();
  const cfgPath = h.writeConfig(tmp, {
    Pop3Server: {
      BindAddress: '127.0.0.1', Port: pop3Port, MailDir: maildir, AuthFailDelay: 0,
      LockFile: path.join(tmp, 'posuto.lock'),
      Users: [
        { UserName: 'user1', Password: 'password', HashType: 'PLAIN' },
        { UserName: XSS_USER, Password: 'password', HashType: 'PLAIN' },
      ],
    },
    Admin: { Port: adminPort, PasswordHash: h.adminHash(ADMIN_PW) },
  });
  server = await h.startServer(cfgPath, tmp);
  adminUrl = 'http://127.0.0.1:' + adminPort + '/';
  // The browser asks for Japanese first, as a Japanese desktop would.
  b = await h.openBrowser({ locale: 'ja-JP', viewport: { width: 1200, height: 800 } });
  ({ page, consoleMsgs, pageErrors, dialogs } = b);
});

after(() => h.cleanup({ browser: b && b.browser, server, dir: tmp }));

test('the login page is in Japanese when the browser prefers it', async () => {
  await page.goto(adminUrl);
  await page.waitForSelector('#view-login:not([hidden])');
  assert.equal(await page.textContent('#view-login h1'), 'posuto にログイン');
  assert.equal(await page.getAttribute('html', 'lang'), 'ja');
  await shot('login-ja');
});

test('a wrong password is refused with a message', async () => {
  await page.fill('#password', 'not-the-password');
  await page.click('#login-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#login-error').textContent !== '');
  assert.equal(await page.textContent('#login-error'), 'パスワードが違います。');
  // The refused request is the one console line we expect; forget it.
  consoleMsgs.length = 0;
});

test('logs in and sees the dashboard', async () => {
  await page.fill('#password', ADMIN_PW);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#view-dashboard:not([hidden])');
  await page.waitForFunction(() => document.querySelector('#dash-users').textContent === '2');
  assert.match(await page.textContent('#dash-uptime'), /\d+秒/);
  const listeners = await page.textContent('#listeners-table tbody');
  assert.ok(listeners.includes(String(pop3Port)), listeners);
  await page.waitForSelector('#live.on');
  await shot('dashboard-ja');
});

test('a POP3 login shows up on the dashboard live', async () => {
  const s = await pop3Login(pop3Port);
  try {
    await page.waitForFunction(() => document.querySelector('#dash-sessions').textContent === '1',
      null, { timeout: 20000 });
    // The sessions table lists it, with its user, from the registry.
    await page.waitForFunction(() => document.querySelector('#sessions-table tbody td').textContent === 'user1',
      null, { timeout: 20000 });
    await shot('dashboard-session-ja');
  } finally {
    s.end('QUIT\r\n');
  }
  await page.waitForFunction(() => document.querySelector('#dash-sessions').textContent === '0',
    null, { timeout: 20000 });
});

test('switches to English', async () => {
  await page.selectOption('#lang', 'en');
  assert.equal(await page.textContent('#view-dashboard h1'), 'Dashboard');
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  // Numbers are redrawn with English units once the counters are fetched.
  await page.waitForFunction(() => /^[\d hm]*\d+s$/.test(document.querySelector('#dash-uptime').textContent));
  await shot('dashboard-en');
});

test('the user list shows markup in names as text', async () => {
  await page.click('#nav a[data-view=users]');
  await page.waitForSelector('#view-users:not([hidden])');
  await page.waitForFunction(() => document.querySelectorAll('#users-table tbody tr').length === 2);
  const names = await page.$$eval('#users-table tbody tr td:first-child', (tds) => tds.map((t) => t.textContent));
  assert.deepEqual(names.sort(), [XSS_USER, 'user1'].sort());
  // Shown as characters: no element was made from them.
  assert.equal(await page.$$eval('#users-table b, #users-table i, img', (e) => e.length), 0);
  const mailbox = await page.textContent('#users-table tbody');
  assert.ok(mailbox.includes(XSS_IMG), mailbox);
  await shot('users-en');
});

test('the general settings page shows the settings in effect', async () => {
  await page.click('#nav a[data-view=general]');
  await page.waitForSelector('#view-general:not([hidden])');
  await page.waitForFunction(() => document.querySelectorAll('#general-fields [data-key]').length > 5);
  assert.equal(await page.inputValue('#listen-table tbody tr .l-port'), String(pop3Port));
  assert.equal(await page.inputValue('#listen-table tbody tr .l-address'), '127.0.0.1');
  assert.ok((await page.inputValue('#set-MailDir')).includes(XSS_IMG));
  assert.equal(await page.$$eval('img', (e) => e.length), 0);
  await shot('general-en');
});

test('nothing ran that should not have: console, errors, CSP, dialogs', async () => {
  const csp = await page.evaluate(() => window.__csp);
  assert.deepEqual(csp, []);
  assert.deepEqual(dialogs, []);
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(consoleMsgs, []);
});

test('logs out', async () => {
  await page.click('#logout');
  await page.waitForSelector('#view-login:not([hidden])');
  const r = await page.evaluate(async () => (await fetch('/api/v1/me')).status);
  assert.equal(r, 401);
});
