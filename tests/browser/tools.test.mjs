// The Tools page in Debian's headless Chromium (issue 14): a fault set
// from the page reaches a real POP3 client (poplib) and is shown among
// the session's commands, removing it from the page ends it; the client
// setup shows the listeners' settings and a QR code.  Screenshots go to
// build/artifacts/.
//
//   node --test tests/browser/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as h from './harness.mjs';

const ADMIN_PW = 'browser-admin-pw';

let tmp, cfgPath, server, b, page, pop3Port, adminPort, pageErrors;

// A poplib login of user1: "+OK..." or the -ERR line.
function popLogin() {
  const r = spawnSync('python3', ['-c', [
    'import poplib, sys',
    'p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=30)',
    'try:',
    '    p.user("user1"); print(p.pass_("password").decode()); p.quit()',
    'except poplib.error_proto as e:',
    '    print(e.args[0].decode())'].join('\n'), String(pop3Port)], { timeout: 60000 });
  return String(r.stdout).trim();
}

before(async () => {
  tmp = h.tempDir('posuto-tools-');
  h.maildir(path.join(tmp, 'mail'), 'user1');
  pop3Port = await h.freePort();
  adminPort = await h.freePort();
  cfgPath = h.writeConfig(tmp, {
    Pop3Server: {
      Listen: [{ Address: '127.0.0.1', Port: pop3Port }],
      MailDir: path.join(tmp, 'mail'), AuthFailDelay: 0, MailboxFormat: 'maildir',
      LockFile: path.join(tmp, 'posuto.lock'),
      Users: [{ UserName: 'user1', Password: 'password', HashType: 'PLAIN' }],
    },
    Admin: { Port: adminPort, PasswordHash: h.adminHash(ADMIN_PW) },
  });
  server = await h.startServer(cfgPath, tmp);
  b = await h.openBrowser({ locale: 'en-US', viewport: { width: 1280, height: 900 } });
  ({ page, pageErrors } = b);
  await h.adminLogin(page, 'http://127.0.0.1:' + adminPort + '/', ADMIN_PW);
});

after(() => h.cleanup({ browser: b && b.browser, server, dir: tmp }));

test('a fault set on the page reaches poplib, and removing it ends it', async () => {
  assert.match(popLogin(), /^\+OK/);
  await page.click('#nav a[data-view=tools]');
  await page.waitForSelector('#view-tools:not([hidden])');
  await page.fill('#fault-user', 'user1');
  await page.selectOption('#fault-kind', 'in-use');
  await page.click('#fault-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#faults-status').textContent === 'Saved and applied.');
  await page.waitForFunction(() => document.querySelector('#faults-table tbody').textContent.includes('user1'));
  const file = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
  assert.deepEqual(file.Pop3Server.Faults, [{ User: 'user1', Kind: 'in-use' }]);
  assert.match(popLogin(), /^-ERR \[IN-USE\]/);
  await h.shot(page, 'tools-fault');
  await page.click('#faults-table button[data-fault="0"]');
  await page.waitForFunction(() => document.querySelector('#faults-table tbody').textContent.includes('No faults'));
  assert.match(popLogin(), /^\+OK/);
});

test('a number is kept with its kind, and bad input is refused with nothing changed', async () => {
  await page.fill('#fault-user', 'user1');
  await page.selectOption('#fault-kind', 'delay');
  await page.fill('#fault-number', '70000');   // over the 60000 ms bound
  const before = fs.readFileSync(cfgPath, 'utf8');
  await page.click('#fault-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#faults-status').classList.contains('bad'));
  assert.equal(fs.readFileSync(cfgPath, 'utf8'), before);
  await page.fill('#fault-number', '5');
  await page.click('#fault-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#faults-table tbody').textContent.includes('Milliseconds 5'));
  await page.click('#faults-table button[data-fault="0"]');
  await page.waitForFunction(() => document.querySelector('#faults-table tbody').textContent.includes('No faults'));
});

test('client setup shows the listener and a QR code of the profile', async () => {
  await page.fill('#setup-email', 'user1@example.com');
  await page.click('#setup-form button[type=submit]');
  await page.waitForFunction((p) => document.querySelector('#setup-table').textContent.includes(':' + p), pop3Port);
  const text = await page.textContent('#setup-table');
  assert.ok(text.includes('localhost:' + pop3Port), text);
  assert.ok(text.includes('user1'), text);
  await page.waitForSelector('#setup-qr svg rect');
  const modules = Number(await page.getAttribute('#setup-qr svg', 'data-modules'));
  assert.ok(modules >= 21, String(modules));
  assert.match(await page.textContent('#setup-qr p'), /\/mobileconfig\?email=user1%40example\.com$/);
  await h.shot(page, 'tools-setup');
  assert.deepEqual(pageErrors, []);
});
