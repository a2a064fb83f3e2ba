// harness.mjs - what every browser test needs: a private posuto with the
// web admin on free loopback ports, Debian's headless Chromium through
// playwright-core, a logged-in page, and clean-up.  Each test file says
// only what its own config and page look like.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '..', '..');
export const bin = path.resolve(repo, process.env.POSUTO_BIN || 'build/posuto');
export const artifacts = path.join(repo, 'build', 'artifacts');

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

// Bounded wait for a condition evaluated in Node.
export async function until(fn, what, tries = 100, ms = 100) {
  for (let i = 0; i < tries; i++) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, ms));
  }
  assert.fail('timed out waiting for ' + what);
}

// A fresh directory for one test file (and build/artifacts for its
// screenshots).
export function tempDir(prefix) {
  fs.mkdirSync(artifacts, { recursive: true });
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function maildir(root, user) {
  for (const d of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(root, user, d), { recursive: true });
  return path.join(root, user);
}

// The admin password as `posuto hash` stores it in the config.
export function adminHash(pw) {
  return execFileSync(bin, ['hash', '--scheme', 'SHA512-CRYPT'], { input: pw + '\n' })
    .toString().trim();
}

// Writes cfg as dir/posuto.json (private: it holds password hashes).
export function writeConfig(dir, cfg) {
  const p = path.join(dir, 'posuto.json');
  fs.writeFileSync(p, JSON.stringify(cfg, null, 2));
  fs.chmodSync(p, 0o600);
  return p;
}

// `posuto serve` on cfgPath, resolved once it says it is ready (its log in
// dir/posuto.log).
export function startServer(cfgPath, dir) {
  return new Promise((resolve, reject) => {
    const log = fs.openSync(path.join(dir, 'posuto.log'), 'a');
    const p = spawn(bin, ['serve', '-c', cfgPath, '--ready-fd', '3'],
      { stdio: ['ignore', log, log, 'pipe'], cwd: dir });
    const timer = setTimeout(() => reject(new Error('posuto not ready in 30 s')), 30000);
    p.stdio[3].on('data', (d) => {
      if (String(d).includes('ready')) { clearTimeout(timer); resolve(p); }
    });
    p.on('exit', (code) => { clearTimeout(timer); reject(new Error('posuto exited ' + code)); });
  });
}

// Chromium with one page; what the page logs, throws and asks is collected
// for the tests to assert on.  onDialog answers dialogs (default: dismiss).
export async function openBrowser({ locale, viewport, onDialog } = {}) {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox'] });
  const context = await browser.newContext({ locale: locale || 'en-US',
    viewport: viewport || { width: 1280, height: 900 } });
  // CSP violations are reported as DOM events: collect them.
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation',
      (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
  });
  const page = await context.newPage();
  const b = { browser, context, page, consoleMsgs: [], pageErrors: [], dialogs: [] };
  page.on('console', (m) => b.consoleMsgs.push(m.type() + ': ' + m.text() +
    (m.location().url ? ' [' + m.location().url + ']' : '')));
  page.on('pageerror', (e) => b.pageErrors.push(String(e)));
  page.on('dialog', (d) => { b.dialogs.push(d.message()); onDialog ? onDialog(d) : d.dismiss(); });
  return b;
}

// Logs the page in to the admin at url; resolves on the dashboard.
export async function adminLogin(page, url, pw) {
  await page.goto(url);
  await page.waitForSelector('#view-login:not([hidden])');
  await page.fill('#password', pw);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#view-dashboard:not([hidden])');
}

export async function shot(page, name) {
  await page.screenshot({ path: path.join(artifacts, name + '.png'), fullPage: true });
}

// The end of a test file: browser, server (SIGTERM, bounded wait), dir.
export async function cleanup({ browser, server, dir }) {
  if (browser) await browser.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => { server.on('exit', r); setTimeout(r, 30000); });
  }
  if (dir && !process.env.KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
}
