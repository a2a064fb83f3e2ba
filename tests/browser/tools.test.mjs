// The Tools page in Debian's headless Chromium (issue 14): a fault set
// from the page reaches a real POP3 client (poplib) and is shown among
// the session's commands, removing it from the page ends it; the client
// setup shows the listeners' settings and a QR code.  Screenshots go to
// build/artifacts/.
//
//   node --test tests/browser/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const bin = path.resolve(repo, process.env.POSUTO_BIN || 'build/posuto');
const artifacts = path.join(repo, 'build', 'artifacts');
const ADMIN_PW = 'browser-admin-pw';

let tmp, cfgPath, server, browser, page, pop3Port, adminPort;
const pageErrors = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

function startServer() {
  return new Promise((resolve, reject) => {
    const log = fs.openSync(path.join(tmp, 'posuto.log'), 'a');
    const p = spawn(bin, ['serve', '-c', cfgPath, '--ready-fd', '3'],
      { stdio: ['ignore', log, log, 'pipe'], cwd: tmp });
    const timer = setTimeout(() => reject(new Error('posuto not ready in 30 s')), 30000);
    p.stdio[3].on('data', (d) => {
      if (String(d).includes('ready')) { clearTimeout(timer); resolve(p); }
    });
    p.on('exit', (code) => { clearTimeout(timer); reject(new Error('posuto exited ' + code)); });
  });
}

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
  fs.mkdirSync(artifacts, { recursive: true });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'posuto-tools-'));
  for (const d of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(tmp, 'mail', 'user1', d), { recursive: true });
  const hash = execFileSync(bin, ['hash', '--scheme', 'SHA512-CRYPT'],
    { input: ADMIN_PW + '\n' }).toString().trim();
  pop3Port = await freePort();
  adminPort = await freePort();
  const cfg = {
    Pop3Server: {
      Listen: [{ Address: '127.0.0.1', Port: pop3Port }],
      MailDir: path.join(tmp, 'mail'), AuthFailDelay: 0, MailboxFormat: 'maildir',
      LockFile: path.join(tmp, 'posuto.lock'),
      Users: [{ UserName: 'user1', Password: 'password', HashType: 'PLAIN' }],
    },
    Admin: { Port: adminPort, PasswordHash: hash },
  };
  cfgPath = path.join(tmp, 'posuto.json');
  fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2));
  server = await startServer();
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox'] });
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto('http://127.0.0.1:' + adminPort + '/');
  await page.waitForSelector('#view-login:not([hidden])');
  await page.fill('#password', ADMIN_PW);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#view-dashboard:not([hidden])');
});

after(async () => {
  if (browser) await browser.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => { server.on('exit', r); setTimeout(r, 30000); });
  }
  if (tmp && !process.env.KEEP_TMP) fs.rmSync(tmp, { recursive: true, force: true });
});

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
  await page.screenshot({ path: path.join(artifacts, 'tools-fault.png'), fullPage: true });
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
  await page.screenshot({ path: path.join(artifacts, 'tools-setup.png'), fullPage: true });
  assert.deepEqual(pageErrors, []);
});
