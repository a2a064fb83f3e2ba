// The Mailboxes page end to end in Debian's headless Chromium (issue 12):
// a Japanese ISO-2022-JP message delivered by `posuto deliver` appears
// live with its subject decoded; a poplib RETR shows "retrieved by"; a
// message is deleted from the page; a hostile mailbox (script in HTML,
// in headers, in attachment names) runs nothing: no dialog, no page
// error, no CSP report, while a deliberate violation is counted (so the
// check can fail).  Screenshots go to build/artifacts/.
//
//   node --test tests/browser/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as h from './harness.mjs';

const bin = h.bin;
const ADMIN_PW = 'browser-admin-pw';
const XSS = '<img src=x onerror=alert(1)>';
const SUBJECT = '会議の議事録について';

let tmp, cfgPath, server, b, page, adminUrl, adminPort, pop3Port, maildir;
let consoleMsgs, pageErrors, dialogs;

// RFC 2047 B encoding of ISO-2022-JP bytes (iconv through python3: Node
// has no ISO-2022-JP encoder).
function jis(text) {
  return execFileSync('python3', ['-c',
    'import sys; sys.stdout.buffer.write(sys.argv[1].encode("iso-2022-jp"))', text]);
}
const bword = (text) => '=?ISO-2022-JP?B?' + jis(text).toString('base64') + '?=';

function japaneseMessage() {
  return Buffer.concat([
    Buffer.from('From: ' + bword('山田太郎') + ' <taro@example.jp>\n' +
      'To: user1@example.com\nSubject: ' + bword(SUBJECT) + '\n' +
      'Date: Tue, 01 Dec 2026 10:00:00 +0900\nMIME-Version: 1.0\n' +
      'Content-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: 7bit\n\n'),
    jis('本文です。よろしくお願いします。\n'),
  ]);
}

function hostileMessage() {
  const att = Buffer.from('MZ not really').toString('base64');
  return 'From: "' + XSS + '" <evil@example.org>\n' +
    'To: hostile\nSubject: ' + XSS + ' <script>alert(2)</script>\n' +
    'X-Evil: <svg onload=alert(3)>\n' +
    'Date: Tue, 01 Dec 2026 10:00:00 +0000\nMIME-Version: 1.0\n' +
    'Content-Type: multipart/mixed; boundary="B"\n\n' +
    '--B\nContent-Type: text/html; charset=UTF-8\n\n' +
    '<html><head><meta http-equiv="refresh" content="0;url=javascript:alert(4)"></head><body>' +
    '<p id="inmail">hostile html</p><script>alert(5);console.error("PWNED")</script>' +
    '<img src="cid:nothing@x" onerror="alert(6)"><svg onload="alert(7)"></svg>' +
    '<a href="javascript:alert(8)">click</a>' +
    '<iframe srcdoc="&lt;script&gt;alert(9)&lt;/script&gt;"></iframe>' +
    '<form action="javascript:alert(10)"><button>go</button></form></body></html>\n' +
    '--B\nContent-Type: text/html; name="' + XSS + '.html"\n' +
    'Content-Disposition: attachment; filename="../' + XSS + '.html"\n' +
    'Content-Transfer-Encoding: base64\n\n' +
    Buffer.from('<script>alert(11)</script>').toString('base64') + '\n' +
    '--B\nContent-Type: application/octet-stream\n' +
    'Content-Disposition: attachment; filename="<script>alert(12)</script>.exe"\n' +
    'Content-Transfer-Encoding: base64\n\n' + att + '\n--B--\n';
}

const shot = (name) => h.shot(page, 'mailbox-' + name);

async function cspCounts() {
  return page.evaluate(async () => (await (await fetch('/api/v1/csp-reports')).json()));
}

before(async () => {
  tmp = h.tempDir('posuto-mailbox-');
  maildir = path.join(tmp, 'mail');
  // hostile's Maildir, with the message already in new/
  for (const u of ['hostile', 'user1']) h.maildir(maildir, u);
  fs.writeFileSync(path.join(maildir, 'hostile', 'new', '1732000000.M1P1.host'), hostileMessage());
  pop3Port = await h.freePort();
  adminPort = await h.freePort();
  cfgPath = h.writeConfig(tmp, {
    Pop3Server: {
      BindAddress: '127.0.0.1', Port: pop3Port, MailDir: maildir, AuthFailDelay: 0,
      MailboxFormat: 'maildir', LockFile: path.join(tmp, 'posuto.lock'),
      Users: [
        { UserName: 'user1', Password: 'password', HashType: 'PLAIN' },
        { UserName: 'hostile', Password: 'password', HashType: 'PLAIN' },
      ],
    },
    Admin: { Port: adminPort, PasswordHash: h.adminHash(ADMIN_PW) },
  });
  server = await h.startServer(cfgPath, tmp);
  adminUrl = 'http://127.0.0.1:' + adminPort + '/';
  b = await h.openBrowser({ locale: 'ja-JP', viewport: { width: 1280, height: 900 } });
  ({ page, consoleMsgs, pageErrors, dialogs } = b);
  await h.adminLogin(page, adminUrl, ADMIN_PW);
  await page.waitForSelector('#live.on');
});

after(() => h.cleanup({ browser: b && b.browser, server, dir: tmp }));

test('the mailboxes page lists the users', async () => {
  await page.click('#nav a[data-view=mailboxes]');
  await page.waitForSelector('#view-mailboxes:not([hidden])');
  await page.waitForFunction(() => document.querySelectorAll('#mbx-boxes tbody tr').length === 2);
  assert.equal(await page.textContent('#view-mailboxes h1'), 'メールボックス');
  await page.click('#mbx-boxes a:text("user1")');
  await page.waitForSelector('#mbx-main:not([hidden])');
  await page.waitForFunction(() => document.querySelector('#mbx-list tbody td.placeholder'));
});

test('a delivered ISO-2022-JP message appears live, its subject decoded', async () => {
  // Delivered by another process: the page learns it from the mailbox's
  // directory stamps (no reload, no click).
  execFileSync(bin, ['deliver', '-c', cfgPath, 'user1'], { input: japaneseMessage() });
  await page.waitForFunction((s) => [...document.querySelectorAll('#mbx-list a.mbx-subject')]
    .some((a) => a.textContent === s), SUBJECT, { timeout: 15000 });
  const row = await page.textContent('#mbx-list tbody tr');
  assert.ok(row.includes('山田太郎'), row);
  await shot('list-ja');
});

test('a poplib RETR shows "retrieved by" live', async () => {
  execFileSync('python3', ['-c', [
    'import poplib, sys',
    'p = poplib.POP3("127.0.0.1", int(sys.argv[1]), timeout=30)',
    'p.user("user1"); p.pass_("password")',
    'p.retr(1)',
    'p.quit()'].join('\n'), String(pop3Port)], { timeout: 60000 });
  await page.waitForFunction(() => /セッション \w+ が .* に受信/.test(
    document.querySelector('#mbx-list td.mbx-state').textContent), null, { timeout: 15000 });
  await page.selectOption('#lang', 'en');
  await page.waitForFunction(() => /retrieved by session \w+ at/.test(
    document.querySelector('#mbx-list td.mbx-state').textContent), null, { timeout: 15000 });
  await shot('retrieved-en');
});

test('opens the message: text, headers, source', async () => {
  await page.click('#mbx-list a.mbx-subject');
  await page.waitForSelector('#mbx-message:not([hidden])');
  assert.equal(await page.textContent('#mbx-msg-subject'), SUBJECT);
  await page.waitForFunction(() => document.querySelector('#mbx-pane pre') &&
    document.querySelector('#mbx-pane pre').textContent.includes('本文です'));
  await page.click('#mbx-tabs button[data-tab=headers]');
  await page.waitForFunction(() => document.querySelector('#mbx-pane table'));
  assert.ok((await page.textContent('#mbx-pane')).includes(SUBJECT));
  await page.click('#mbx-tabs button[data-tab=raw]');
  await page.waitForFunction(() => document.querySelector('#mbx-pane pre.mbx-raw') &&
    document.querySelector('#mbx-pane pre.mbx-raw').textContent.includes('=?ISO-2022-JP?B?'));
  await shot('message-en');
});

test('searches by sender and subject', async () => {
  await page.fill('#mbx-q', 'taro@');
  await page.click('#mbx-search button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('#mbx-list a.mbx-subject').length === 1);
  await page.fill('#mbx-q', 'no-such-sender');
  await page.click('#mbx-search button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#mbx-list td.placeholder'));
  await page.fill('#mbx-q', '');
  await page.fill('#mbx-subject', '議事録');
  await page.click('#mbx-search button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('#mbx-list a.mbx-subject').length === 1);
});

test('uploads an .eml and deletes a message from the page', async () => {
  const eml = path.join(tmp, 'upload.eml');
  fs.writeFileSync(eml, 'From: up@example.org\nSubject: uploaded one\n\nhello\n');
  await page.fill('#mbx-subject', '');
  await page.click('#mbx-search button[type=submit]');
  await page.setInputFiles('#mbx-upload', eml);
  await page.waitForFunction(() => [...document.querySelectorAll('#mbx-list a.mbx-subject')]
    .some((a) => a.textContent === 'uploaded one'), null, { timeout: 15000 });
  await page.click('#mbx-list a.mbx-subject:text("uploaded one")');
  await page.waitForFunction(() => document.querySelector('#mbx-msg-subject').textContent === 'uploaded one');
  await page.click('#mbx-delete');
  await page.waitForFunction(() => ![...document.querySelectorAll('#mbx-list a.mbx-subject')]
    .some((a) => a.textContent === 'uploaded one'), null, { timeout: 15000 });
  const files = ['new', 'cur'].flatMap((d) => fs.readdirSync(path.join(maildir, 'user1', d)));
  assert.equal(files.length, 1, files.join(','));
  await shot('after-delete-en');
});

test('a hostile mailbox runs nothing', async () => {
  await page.goto(adminUrl + '#/mailboxes/hostile');
  await page.waitForSelector('#mbx-main:not([hidden])');
  await page.waitForFunction(() => document.querySelectorAll('#mbx-list a.mbx-subject').length === 1);
  const subj = await page.textContent('#mbx-list a.mbx-subject');
  assert.equal(subj, XSS + ' <script>alert(2)</script>');
  await page.click('#mbx-list a.mbx-subject');
  await page.waitForSelector('#mbx-message:not([hidden])');
  // The HTML part in its sandboxed frame: rendered (text shows), inert.
  const frameEl = await page.waitForSelector('#mbx-pane iframe');
  assert.equal(await frameEl.getAttribute('sandbox'), '');
  const frame = await frameEl.contentFrame();
  await frame.waitForSelector('#inmail');
  assert.equal(await frame.textContent('#inmail'), 'hostile html');
  await page.click('#mbx-remote');
  await page.waitForSelector('#mbx-pane iframe');
  for (const tab of ['headers', 'raw', 'attachments', 'html']) {
    await page.click('#mbx-tabs button[data-tab=' + tab + ']');
    await page.waitForTimeout(300);
  }
  await page.click('#mbx-tabs button[data-tab=attachments]');
  await page.waitForSelector('#mbx-pane ul.mbx-atts li a');
  const names = await page.$$eval('#mbx-pane ul.mbx-atts a', (as) => as.map((a) => a.textContent));
  assert.equal(names.length, 2, names.join('|'));
  assert.ok(names.every((n) => !n.includes('/')), names.join('|'));
  await shot('hostile-en');
  // No element was made from any of it in our page.
  assert.equal(await page.$$eval('#view-mailboxes img, #view-mailboxes svg, #view-mailboxes script',
    (e) => e.length), 0);
  await page.waitForTimeout(1000);      // give a report every chance to arrive
  assert.deepEqual(dialogs, []);
  assert.deepEqual(pageErrors, []);
  // Chromium says it blocked the mail's scripts and its javascript:
  // refresh (the sandbox working); anything else on the console would be
  // ours or the mail's.
  const other = consoleMsgs.filter((m) => !/^error: (Blocked (script execution|form submission|navigation)|Refused to refresh .* to a javascript: URL)/.test(m));
  assert.deepEqual(other.filter((m) => m.startsWith('error') || m.includes('PWNED')), []);
  assert.deepEqual(await cspCounts(), { admin: 0, mail: 0, total: 0 });
});

test('a deliberate violation is reported, so the check above can fail', async () => {
  await page.evaluate(() => {
    const i = document.createElement('img');
    i.src = 'https://blocked.invalid/pixel.png';
    document.body.appendChild(i);
  });
  for (let i = 0; i < 100; i++) {
    if ((await cspCounts()).admin > 0) break;
    await page.waitForTimeout(100);
  }
  assert.ok((await cspCounts()).admin > 0);
});
