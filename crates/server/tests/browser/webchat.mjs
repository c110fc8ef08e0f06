// The WebChat widget in a real browser (SPEC 7.18.4, 7.21): headless /usr/bin/chromium driven by
// playwright-core (no browser download), against a Switchboard test server prepared by
// crates/server/tests/it/webchat_browser.rs, which passes:
//   SB_BASE           the server as the page sees it (http://localhost:{port}: `localhost` is in
//                     the WebChat integration's allowedOrigins)
//   SB_WEBCHAT_ID     the WebChat integration
//   SB_AGENT_ID       a Direct Agent integration of the same hub (no webhookUrl: websocket)
//   SB_ENGINE_TOKEN   an engine-api token of the tenant
//   SB_PORTAL_TOKEN   a portal-api token of the tenant (to pause the WebChat integration)
//   SB_SHOT_DIR       where the screenshots go (their paths are printed)
//   SB_SMOKE=1        (optional) only the page, the widget and its UI, no session needed
//   SB_CHROMIUM       (optional) the browser binary, default /usr/bin/chromium
// Prints one `ok - …` line per step; exits 1 with `FAILED: …` on the first failure.

import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`${k} is not set`);
  return v;
};
const BASE = env('SB_BASE').replace(/\/+$/, '');
const WEBCHAT = env('SB_WEBCHAT_ID');
const SMOKE = process.env.SB_SMOKE === '1';
const SHOTS = env('SB_SHOT_DIR', tmpdir());
const STEP_TIMEOUT = 15000;

const step = (what) => console.log(`ok - ${what}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, timeout = STEP_TIMEOUT) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(100);
  }
}

// A picture server, so that the agent's image and card render a real image (the demo's CSP
// allows images from anywhere).
const SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="480" height="270" viewBox="0 0 480 270">
<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#60a5fa"/><stop offset="1" stop-color="#1e3a8a"/></linearGradient></defs>
<rect width="480" height="270" fill="url(#g)"/><circle cx="370" cy="80" r="40" fill="#fde68a"/>
<path d="M0 270 L150 120 L260 230 L340 160 L480 270 Z" fill="#1e293b" opacity=".85"/></svg>`;
let pictures;
let pictureBase = '';
if (!SMOKE) {
  pictures = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'image/svg+xml', 'Cache-Control': 'no-store' });
    res.end(SVG);
  });
  await new Promise((r) => pictures.listen(0, '127.0.0.1', r));
  pictureBase = `http://127.0.0.1:${pictures.address().port}`;
}

async function api(method, path, token, body) {
  const r = await fetch(BASE + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const profile = mkdtempSync(join(tmpdir(), 'sb-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: env('SB_CHROMIUM', '/usr/bin/chromium'),
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const pageErrors = [];
let lastEvents = async () => [];
let code = 0;
try {
  await run();
  console.log('all steps passed');
} catch (e) {
  console.log(`FAILED: ${e && e.stack ? e.stack : e}`);
  console.log(`widget events of the page:\n  ${(await lastEvents()).join('\n  ')}`);
  code = 1;
} finally {
  await context.close().catch(() => {});
  if (pictures) pictures.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(code);

async function run() {
  const page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') console.log(`  (console) ${m.text()}`); });
  // Every event the widget raises, to show what happened when a step fails.
  await page.addInitScript(() => {
    window.__sb = [];
    for (const n of ['ready', 'open', 'close', 'connected', 'disconnected', 'message', 'sent', 'error', 'conversation', 'unavailable', 'destroy']) {
      document.addEventListener(`switchboard:webchat:${n}`, (e) => window.__sb.push(`${n} ${JSON.stringify(e.detail).slice(0, 300)}`));
    }
  });
  lastEvents = () => page.evaluate(() => window.__sb).catch(() => []);
  const noErrors = () => {
    if (pageErrors.length) throw new Error(`errors in the page: ${pageErrors.join(' | ')}`);
  };

  // 1. The demo page loads the widget (its own script, under its CSP) and opens it.
  const demo = `${BASE}/webchat/v1/demo?integrationId=${WEBCHAT}`;
  const resp = await page.goto(demo);
  if (resp.status() !== 200) throw new Error(`demo page: ${resp.status()}`);
  await page.locator('[data-switchboard-webchat]').waitFor({ state: 'attached' });
  const panel = page.locator('.panel');
  await panel.waitFor({ state: 'visible' });
  const shadow = await page.evaluate(() => {
    const host = document.querySelector('[data-switchboard-webchat]');
    return !!host.shadowRoot && !document.querySelector('.panel');
  });
  if (!shadow) throw new Error('the widget is not in a shadow root');
  await page.locator('.launch').waitFor({ state: 'visible' });
  await page.locator('textarea').waitFor({ state: 'visible' });
  if (!(await page.locator('.title').textContent())) throw new Error('no header title');
  step('the demo page loads widget.js and opens the panel in a shadow root');
  // The launcher closes and reopens it.
  await page.locator('.launch').click();
  await panel.waitFor({ state: 'hidden' });
  await page.locator('.launch').click();
  await panel.waitFor({ state: 'visible' });
  step('the launcher closes and reopens the panel');
  // The input grows with Shift+Enter lines.
  const ta = page.locator('textarea');
  const h0 = (await ta.boundingBox()).height;
  await ta.click();
  if (SMOKE) {
    await ta.type('line 1');
    await ta.press('Shift+Enter');
    await ta.type('line 2');
    await ta.press('Shift+Enter');
    await ta.type('line 3');
    const h1 = (await ta.boundingBox()).height;
    if (!(h1 > h0)) throw new Error(`the input did not grow (${h0} -> ${h1})`);
    if ((await ta.inputValue()) !== 'line 1\nline 2\nline 3') throw new Error('Shift+Enter did not break the line');
    await ta.fill('');
    step('Shift+Enter breaks a line and the input grows');
    await screenshots(page);
    noErrors();
    return;
  }

  // 2. Online, and the agent's websocket (opened from a blank page of the same browser).
  await until('the widget to be online', async () => (await page.locator('.status').textContent()) === 'Online');
  step('a session is created and the socket is online');
  const agent = await context.newPage();
  await agent.goto(`${BASE}/healthz`);
  const agentUrl = `${BASE.replace(/^http/, 'ws')}/engine-chat-hub?iId=${env('SB_AGENT_ID')}&access_token=${encodeURIComponent(env('SB_ENGINE_TOKEN'))}`;
  await agent.evaluate((url) => new Promise((resolve, reject) => {
    window.frames_ = [];
    const ws = new WebSocket(url);
    ws.onmessage = (e) => window.frames_.push(JSON.parse(e.data));
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error('agent socket failed'));
  }), agentUrl);
  const agentGot = (what, pred) => until(`the agent's socket to get ${what}`, () =>
    agent.evaluate(() => window.frames_).then((fs) => fs.find((f) => f.type === 'activity' && pred(f.payload.activity, f.payload))));

  // 3. The customer types (typing_on reaches the agent) and sends with Enter.
  await ta.type('Hello from the browser', { delay: 10 });
  await agentGot('typing_on', (a) => a.type === 'event' && a.event.type === 'typing_on');
  step('typing sends typing_on');
  await ta.press('Enter');
  if ((await ta.inputValue()) !== '') throw new Error('the input was not cleared');
  const first = await agentGot('the customer text', (a) => a.message && a.message.text === 'Hello from the browser');
  const conversationId = first.payload.conversationId;
  await agentGot('typing_off', (a) => a.type === 'event' && a.event.type === 'typing_off');
  step(`a typed message reaches the agent's websocket (conversation ${conversationId})`);
  // The echo replaced the local copy: one bubble, confirmed.
  await until('the local copy to be confirmed by its echo', async () =>
    (await page.locator('.row.me:not(.pending)', { hasText: 'Hello from the browser' }).count()) === 1);
  await sleep(300);
  if ((await page.locator('.row.me', { hasText: 'Hello from the browser' }).count()) !== 1) throw new Error('the echo duplicated the message');
  step('the echo replaces the local copy (one bubble)');

  // 4. The agent types, then answers with a text, an image and a card.
  const engine = env('SB_ENGINE_TOKEN');
  const agentId = env('SB_AGENT_ID');
  const say = (body) => api('POST', `/inbound/customer/v1/direct/activity/${conversationId}`, engine, { sender: { integrationId: agentId }, ...body });
  await say({ type: 'event', event: { type: 'typing_on' } });
  await page.locator('.typing.on').waitFor({ state: 'visible' });
  step("the agent's typing_on shows the typing indicator");
  await say({ type: 'message', message: { type: 'text', text: 'Hi! How can I help? See https://example.com/help' } });
  await page.locator('.row.them', { hasText: 'Hi! How can I help?' }).waitFor();
  await page.locator('.typing.on').waitFor({ state: 'hidden' });
  const help = page.locator('.row.them a', { hasText: 'https://example.com/help' });
  if ((await help.getAttribute('rel')) !== 'noopener' || (await help.getAttribute('target')) !== '_blank') throw new Error('text link attributes');
  step("the agent's text renders, its URL as a link");
  await say({ type: 'message', message: { type: 'image', url: `${pictureBase}/mountains.svg`, caption: 'Our office' } });
  const img = page.locator('.row.them img.media');
  await img.waitFor();
  await until('the image to load', () => img.evaluate((i) => i.complete && i.naturalWidth > 0));
  if ((await img.getAttribute('referrerpolicy')) !== 'no-referrer') throw new Error('img referrerpolicy');
  step("the agent's image renders (referrerpolicy no-referrer)");
  await say({
    type: 'message',
    message: {
      type: 'card',
      title: 'Premium plan',
      description: '24/7 support, <b>no</b> markup here',
      mediaUrl: `${pictureBase}/plan.svg`,
      actions: [
        { type: 'reply', title: 'Tell me more', payload: 'more' },
        { type: 'postback', title: 'Buy now', payload: 'buy-premium' },
        { type: 'link', title: 'Pricing', url: 'https://example.com/pricing' },
      ],
    },
  });
  const card = page.locator('.card', { hasText: 'Premium plan' });
  await card.waitFor();
  if ((await card.locator('.cd').textContent()) !== '24/7 support, <b>no</b> markup here') throw new Error('card description not as text');
  const pricing = card.locator('a.btn', { hasText: 'Pricing' });
  if ((await pricing.getAttribute('rel')) !== 'noopener' || (await pricing.getAttribute('target')) !== '_blank') throw new Error('link button attributes');
  step("the agent's card renders with its image, description as text and three buttons");

  // 5. A reply button sends its title; a postback button sends a payload event.
  await card.locator('button.btn', { hasText: 'Tell me more' }).click();
  await agentGot('the reply title as text', (a) => a.message && a.message.type === 'text' && a.message.text === 'Tell me more');
  await page.locator('.row.me', { hasText: 'Tell me more' }).waitFor();
  step("clicking a reply button sends its title as the customer's text");
  await card.locator('button.btn', { hasText: 'Buy now' }).click();
  await agentGot('the postback payload', (a) => a.type === 'event' && a.event.type === 'payload' && a.event.payloadType === 'postback' && a.event.payload === 'buy-premium');
  step('clicking a postback button sends a payload event');
  await sleep(300);
  await screenshots(page, 'desktop');

  // Every other message type of SPEC 4, and markup that must stay text.
  const them = () => page.locator('.row.them').last();
  const kinds = [
    [{ type: 'text', text: '<img src=x onerror="window.__pwned=1"> <b>bold?</b>' }, async (r) => {
      if ((await r.locator('img').count()) !== 0 || (await r.locator('b').count()) !== 0) throw new Error('markup became HTML');
      if (!(await r.textContent()).includes('<b>bold?</b>')) throw new Error('markup text lost');
    }],
    [{ type: 'text', text: 'Pick a size', items: [{ title: 'Small', description: '250 ml' }], actions: [{ type: 'reply', title: 'Large', payload: 'L' }] }, async (r) => {
      await r.locator('text=• Small — 250 ml').waitFor();
      await r.locator('button.btn', { hasText: 'Large' }).waitFor();
    }],
    [{ type: 'video', url: `${pictureBase}/clip.mp4`, caption: 'A clip' }, async (r) => {
      if ((await r.locator('video').getAttribute('src')) !== `${pictureBase}/clip.mp4`) throw new Error('video src');
      if (!(await r.locator('video').evaluate((v) => v.controls))) throw new Error('video controls');
    }],
    [{ type: 'audio', url: `${pictureBase}/note.mp3` }, async (r) => { await r.locator('audio').waitFor({ state: 'attached' }); }],
    [{ type: 'attachment', url: 'https://example.com/terms.pdf', title: 'terms.pdf' }, async (r) => {
      if ((await r.locator('a', { hasText: 'terms.pdf' }).getAttribute('href')) !== 'https://example.com/terms.pdf') throw new Error('attachment link');
    }],
    [{ type: 'youtube', url: 'https://www.youtube.com/watch?v=dQw4w9WgXcQ' }, async (r) => {
      if ((await r.locator('a').getAttribute('href')) !== 'https://www.youtube.com/watch?v=dQw4w9WgXcQ') throw new Error('youtube link');
    }],
    [{ type: 'vimeo', url: 'https://vimeo.com/76979871', title: 'A film' }, async (r) => {
      if ((await r.locator('a', { hasText: 'A film' }).getAttribute('href')) !== 'https://vimeo.com/76979871') throw new Error('vimeo link');
    }],
    [{ type: 'location', latitude: 48.8584, longitude: 2.2945, address: 'Champ de Mars, Paris' }, async (r) => {
      const href = await r.locator('a').getAttribute('href');
      if (!href.startsWith('https://www.openstreetmap.org/?mlat=48.8584&mlon=2.2945')) throw new Error(`map link ${href}`);
      await r.locator('text=Champ de Mars, Paris').waitFor();
    }],
    [{ type: 'carousel', items: [{ title: 'Red', description: 'warm', mediaUrl: `${pictureBase}/red.svg` }, { title: 'Blue', actions: [{ type: 'postback', title: 'Blue it is', payload: 'blue' }] }] }, async (r) => {
      if ((await r.locator('.card').count()) !== 2) throw new Error('carousel cards');
      await r.locator('button.btn', { hasText: 'Blue it is' }).waitFor();
    }],
    [{ type: 'list', items: [{ title: 'First' }, { title: 'Second', description: 'two' }] }, async (r) => {
      if ((await r.locator('.cards.list .card').count()) !== 2) throw new Error('list items');
    }],
  ];
  for (const [message, check] of kinds) {
    await say({ type: 'message', message });
    await until(`a ${message.type} bubble`, async () => (await them().getAttribute('data-type')) === message.type);
    await check(them());
  }
  if (await page.evaluate(() => window.__pwned)) throw new Error('a message ran script');
  step('video, audio, attachment, youtube, vimeo, location, carousel, list and text with items render; markup stays text');

  // 6. Reloading resumes the same conversation, with its history.
  await page.reload();
  await panel.waitFor({ state: 'visible' });
  await until('the widget to be online again', async () => (await page.locator('.status').textContent()) === 'Online');
  for (const text of ['Hello from the browser', 'Hi! How can I help?', 'Premium plan', 'Tell me more']) {
    await page.locator('.row', { hasText: text }).first().waitFor();
  }
  await page.locator('.row.them img.media').waitFor();
  if ((await page.locator('.row.me', { hasText: 'Hello from the browser' }).count()) !== 1) throw new Error('history repeated a message');
  await ta.type('Back again');
  await ta.press('Enter');
  const back = await agentGot('the message after the reload', (a) => a.message && a.message.text === 'Back again');
  if (back.payload.conversationId !== conversationId) throw new Error('the reload opened another conversation');
  step('reloading resumes the same conversation with its history');
  await page.setViewportSize({ width: 390, height: 844 });
  await sleep(300);
  const box = await panel.boundingBox();
  if (box.width !== 390) throw new Error(`on a phone the panel is ${box.width} px wide`);
  await screenshots(page, 'phone');
  step('on a phone-sized viewport the panel fills the screen');
  await page.setViewportSize({ width: 1280, height: 800 });

  // 7. Closing the conversation (4410) makes the widget start a new one by itself.
  await api('POST', `/api/v1/conversations/${conversationId}/close`, engine);
  await page.locator('.note', { hasText: 'A new conversation has started.' }).waitFor();
  await until('the widget to be online again', async () => (await page.locator('.status').textContent()) === 'Online');
  await ta.type('A new topic');
  await ta.press('Enter');
  const fresh = await agentGot('the message of the new conversation', (a) => a.message && a.message.text === 'A new topic');
  if (fresh.payload.conversationId === conversationId) throw new Error('4410 kept the closed conversation');
  step('a closed conversation (4410) is followed by a new one');

  // A second tab of the same browser: the same conversation, and echo across tabs. Its socket
  // goes through a Playwright route, which plays the server's 4401 and a dropped connection.
  const tab = await context.newPage();
  tab.on('pageerror', (e) => pageErrors.push(String(e)));
  const posts = [];
  tab.on('request', (r) => { if (r.method() === 'POST' && r.url().endsWith('/sessions')) posts.push(r.url()); });
  const sockets = [];
  await tab.routeWebSocket(/\/webchat\/v1\/[^/]+\/ws/, (ws) => { ws.connectToServer(); sockets.push({ ws, at: Date.now() }); });
  await tab.goto(demo);
  const tabOnline = () => until('the second tab to be online', async () => (await tab.locator('.status').textContent()) === 'Online');
  await tabOnline();
  const tabInput = tab.locator('textarea');
  await tabInput.type('From the second tab');
  await tabInput.press('Enter');
  const second = await agentGot('the second tab message', (a) => a.message && a.message.text === 'From the second tab');
  if (second.payload.conversationId !== fresh.payload.conversationId) throw new Error('the second tab is in another conversation');
  await page.locator('.row.me', { hasText: 'From the second tab' }).waitFor();
  step("a second tab joins the same conversation and the first shows its message (echo)");
  const agentRows = await tab.locator('.row.them').count();
  const sessionsBefore = posts.length;
  sockets[0].ws.close({ code: 4401, reason: 'session expired' });
  await until('a renewed session and a new socket', () => posts.length === sessionsBefore + 1 && sockets.length === 2);
  await tabOnline();
  step('4401: the widget renews its session, reconnects and resumes');
  const dropped = Date.now();
  sockets[1].ws.close({ code: 1001, reason: 'shutdown' });
  await until('a reconnection', () => sockets.length === 3);
  const waited = sockets[2].at - dropped;
  if (waited < 900) throw new Error(`reconnected after ${waited} ms, before the 1 s backoff`);
  if (posts.length !== sessionsBefore + 1) throw new Error('a dropped socket renewed the session');
  await tabOnline();
  await tabInput.type('After reconnecting');
  await tabInput.press('Enter');
  const after = await agentGot('the message after reconnecting', (a) => a.message && a.message.text === 'After reconnecting');
  if (after.payload.conversationId !== fresh.payload.conversationId) throw new Error('the reconnection changed the conversation');
  await tab.locator('.row.me:not(.pending)', { hasText: 'After reconnecting' }).waitFor();
  if ((await tab.locator('.row.them').count()) !== agentRows) throw new Error('resume repeated messages');
  step(`a dropped socket reconnects after the backoff (${waited} ms) with the same session, without repeats`);
  await tab.close();

  // Closed panel: an agent's message shows as an unread count on the launcher.
  await page.locator('.x').click();
  await panel.waitFor({ state: 'hidden' });
  await api('POST', `/inbound/customer/v1/direct/activity/${fresh.payload.conversationId}`, engine, { sender: { integrationId: agentId }, type: 'message', message: { type: 'text', text: 'Still there?' } });
  await until('the unread badge', async () => (await page.locator('.badge').textContent()) === '1');
  await page.locator('.launch').click();
  await panel.waitFor({ state: 'visible' });
  if ((await page.locator('.badge').textContent()) !== '') throw new Error('the badge stays after opening');
  await page.locator('.row.them', { hasText: 'Still there?' }).waitFor();
  step('a message to a closed panel shows an unread badge, cleared on opening');

  // 8. Pausing the integration shows the closed state.
  await api('PUT', `/api/v1/integrations/${WEBCHAT}`, env('SB_PORTAL_TOKEN'), { statusId: 3002 });
  await until('the closed state', async () => (await page.locator('.status').textContent()) === 'Closed');
  if (!(await ta.isDisabled())) throw new Error('the input stays enabled when closed');
  await page.locator('.note', { hasText: 'closed' }).waitFor();
  step('pausing the integration shows the closed state');
  await screenshots(page, 'closed');
  noErrors();
}

async function screenshots(page, name) {
  const sizes = name ? [[name, null]] : [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]];
  for (const [n, size] of sizes) {
    if (size) await page.setViewportSize(size);
    const path = join(SHOTS, `webchat-${n}.png`);
    await page.screenshot({ path });
    console.log(`screenshot ${path}`);
  }
  if (!name) await page.setViewportSize({ width: 1280, height: 800 });
}
