// Drives the real npm client `smooch-core` against a Switchboard server (SPEC 8.12): every call
// of SPEC 8.4-8.9 the client offers, through the client, with its error handling (`err.code`,
// `err.description`, `err.response.status`), its own JWTs (keyId + secret + scope), `getJwt`
// tokens, app- and appUser-scope tokens, and a deleted key.
//
// Environment:
//   SB_URL         the server root (smooch-core's `serviceUrl`), e.g. http://127.0.0.1:8080
//   SB_KEY_ID      an account key id (`act_…`, SPEC 8.3)
//   SB_KEY_SECRET  its secret
//   SB_CLIENT      8 (smooch-core 8.11.4, speaks /v1.1) or 6 (smooch-core 6.6.0, speaks /v1)
//   SB_RECEIVER    optional: a webhook receiver's URL; a webhook with the default triggers is left
//                  on the main app, pointing at `<SB_RECEIVER>/v<SB_CLIENT>`
//
// Prints one line per step, then `RESULT <json>` (what the Rust test checks at its receiver) and
// `all steps passed`. The first failing step ends the run with exit code 1 and names the step.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`FAILED setup: the environment variable ${name} is required`);
    process.exit(2);
  }
  return v;
}

const serviceUrl = need('SB_URL');
const keyId = need('SB_KEY_ID');
const secret = need('SB_KEY_SECRET');
const CLIENT = process.env.SB_CLIENT || '8';
if (CLIENT !== '8' && CLIENT !== '6') {
  console.error(`FAILED setup: SB_CLIENT must be 8 or 6, not ${CLIENT}`);
  process.exit(2);
}
const receiver = process.env.SB_RECEIVER ? process.env.SB_RECEIVER.replace(/\/$/, '') : null;
const V8 = CLIENT === '8';
const Smooch = require(V8 ? 'smooch-core' : 'smooch-core-6');
const clientVersion = require(V8 ? 'smooch-core/package.json' : 'smooch-core-6/package.json').version;
// The prefix this client speaks, and the webhook defaults of that prefix (SPEC 8.7).
const PREFIX = V8 ? '/v1.1' : '/v1';
const DEFAULT_TRIGGERS = V8 ? ['message:appUser'] : ['message'];
const DEFAULT_FULL_APP_USER = !V8;

const run = crypto.randomBytes(4).toString('hex');
const name = (what) => `c${CLIENT}-${run}-${what}`;
const UUID_LIKE = /^[0-9a-f-]{32,36}$/;

// ---------------------------------------------------------------------------------------------
// Steps and checks

let stepNo = 0;

async function step(title, fn) {
  stepNo += 1;
  const label = `step ${stepNo} [smooch-core ${clientVersion}] ${title}`;
  try {
    const out = await fn();
    console.log(`ok   ${label}`);
    return out;
  } catch (e) {
    console.error(`FAILED ${label}`);
    console.error(`  ${e && e.stack ? e.stack : e}`);
    if (e && e.response) {
      console.error(`  HTTP ${e.response.status} ${e.response.url}; err.code=${e.code}; err.description=${e.description}`);
    }
    process.exit(1);
  }
}

/** Runs `fn`; it must be refused by the server with `status` and Smooch `code` (SPEC 8.2). */
async function refused(fn, status, code, descriptionMatch) {
  let err = null;
  let answer;
  try {
    answer = await fn();
  } catch (e) {
    err = e;
  }
  if (!err) {
    throw new Error(`expected HTTP ${status} '${code}', got a success: ${JSON.stringify(answer)}`);
  }
  if (!err.response) {
    throw new Error(`expected HTTP ${status} '${code}' from the server, got an error inside smooch-core: ${err.message}`);
  }
  const where = `${err.response.url} -> ${err.response.status} code=${err.code} description=${err.description}`;
  assert.equal(err.response.status, status, `status: ${where}`);
  assert.equal(err.code, code, `err.code: ${where}`);
  assert.equal(typeof err.description, 'string', `err.description: ${where}`);
  assert.equal(err.message, err.description, `err.message is error.description: ${where}`);
  assert.match(err.description, /\(code: SMC\d{6}\)/, `the description carries its SMC code: ${where}`);
  assert.match(err.response.headers.get('content-type') || '', /^application\/json/, `content type: ${where}`);
  if (descriptionMatch) assert.match(err.description, descriptionMatch, where);
  return err;
}

/** Runs `fn`; smooch-core itself must refuse it (no HTTP answer), with a message matching `re`. */
async function refusedByClient(fn, re) {
  let err = null;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `smooch-core should have refused the call (${re})`);
  assert.equal(err.response, undefined, `smooch-core should refuse before any request, got HTTP ${err.response && err.response.status}`);
  assert.match(err.message, re);
}

function decodeJwt(token) {
  const [h, p, s] = token.split('.');
  assert.ok(h && p && s, `a JWS has three parts: ${token}`);
  const json = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  return { header: json(h), payload: json(p), signingInput: `${h}.${p}`, signature: s };
}

function hs256(input, key) {
  return crypto.createHmac('sha256', Buffer.from(key, 'utf8')).update(input).digest('base64url');
}

function checkApp(app, { name: appName, metadata }) {
  assert.match(app._id, UUID_LIKE, 'app._id is the hub id');
  assert.equal(app.name, appName);
  assert.match(app.appToken, /^[a-z0-9]{25}$/, 'appToken: 25 chars [a-z0-9]');
  assert.equal(typeof app.settings, 'object');
  assert.notEqual(app.settings, null, 'settings is {} until set');
  if (metadata === undefined) assert.equal(app.metadata, null, 'metadata is null until set');
  else assert.deepEqual(app.metadata, metadata);
}

function checkWebhook(hook, target, triggers, fullAppUser) {
  assert.match(hook._id, UUID_LIKE, 'webhook._id is an integration id');
  assert.equal(hook.target, target);
  assert.deepEqual(hook.triggers, triggers);
  assert.match(hook.secret, /^[0-9a-f]{40}$/, 'secret: 40 lower-case hex');
  assert.equal(hook.version, 'v1.1');
  assert.equal(hook.includeClient, false);
  assert.equal(hook.includeFullAppUser, fullAppUser);
}

function checkMessage(message, fields) {
  assert.equal(typeof message._id, 'string', 'message._id');
  assert.equal(typeof message.received, 'number', 'message.received: Unix seconds');
  assert.ok(Math.abs(message.received - Date.now() / 1000) < 600, `received ${message.received} is about now`);
  assert.equal(typeof message.source, 'object', 'message.source');
  assert.equal(typeof message.source.type, 'string', 'message.source.type');
  for (const [k, v] of Object.entries(fields)) {
    assert.deepEqual(message[k], v, `message.${k}`);
  }
}

function checkConversation(conversation) {
  assert.equal(typeof conversation._id, 'string', 'conversation._id');
  assert.equal(conversation.unreadCount, 0, 'unreadCount is always 0');
}

// ---------------------------------------------------------------------------------------------
// Clients

const account = await step('an account-scope client from keyId + secret (smooch-core signs its own JWT)', () => {
  const c = new Smooch({ keyId, secret, scope: 'account', serviceUrl });
  const { header, payload, signingInput, signature } = decodeJwt(c.authHeaders.Authorization.slice('Bearer '.length));
  assert.equal(header.alg, 'HS256');
  assert.equal(header.kid, keyId);
  assert.equal(payload.scope, 'account');
  assert.equal(hs256(signingInput, secret), signature, 'the HMAC key is the secret\'s UTF-8 bytes');
  return c;
});

// ---------------------------------------------------------------------------------------------
// 8.4 Apps

const mainName = name('main');
const main = await step('apps.create(name) -> 201 { app }', async () => {
  const { app } = await account.apps.create(mainName);
  checkApp(app, { name: mainName });
  assert.deepEqual(app.settings, {});
  return app;
});

const other = await step('apps.create(name, settings, metadata) echoes settings and metadata', async () => {
  const metadata = { team: 'support', tier: 2, vip: true };
  const settings = { maskCreditCardNumbers: true };
  const { app } = await account.apps.create(name('other'), settings, metadata);
  checkApp(app, { name: name('other'), metadata });
  assert.deepEqual(app.settings, settings);
  return app;
});

const third = await step('apps.create a third app (paging)', async () => {
  const { app } = await account.apps.create(name('third'));
  checkApp(app, { name: name('third') });
  return app;
});

await step('apps.create with a taken name -> 409 conflict', () =>
  refused(() => account.apps.create(mainName), 409, 'conflict'));

await step('apps.create with a name too long -> 400 bad_request', () =>
  refused(() => account.apps.create('x'.repeat(201)), 400, 'bad_request'));

await step('apps.list() -> { apps, hasMore, offset }, oldest first; limit/offset page it', async () => {
  // Every app of the tenant, a page of 100 at a time (other runs may have made apps too).
  const all = [];
  for (let offset = 0; ; ) {
    const page = await account.apps.list(100, offset);
    assert.ok(Array.isArray(page.apps), 'apps is an array');
    assert.equal(page.offset, offset, 'offset as requested');
    all.push(...page.apps);
    offset += page.apps.length;
    if (!page.hasMore) break;
    assert.equal(page.apps.length, 100);
  }
  const ids = all.map((a) => a._id);
  const mine = [main._id, other._id, third._id].map((id) => ids.indexOf(id));
  assert.ok(mine.every((i) => i >= 0), 'the new apps are listed');
  assert.ok(mine[0] < mine[1] && mine[1] < mine[2], 'oldest first');
  const total = all.length;

  const first = await account.apps.list();
  assert.equal(first.offset, 0);
  assert.equal(first.hasMore, total > 25, 'default limit 25');
  assert.equal(first.apps.length, Math.min(total, 25));

  const two = await account.apps.list(2);
  assert.equal(two.apps.length, 2);
  assert.equal(two.hasMore, total > 2);
  assert.deepEqual(two.apps.map((a) => a._id), ids.slice(0, 2));

  const last = await account.apps.list(2, total - 1);
  assert.equal(last.offset, total - 1);
  assert.equal(last.apps.length, 1);
  assert.equal(last.hasMore, false);
  assert.equal(last.apps[0]._id, ids[total - 1]);
  assert.equal(last.apps[0]._id, third._id);

  const past = await account.apps.list(10, total + 5);
  assert.deepEqual(past.apps, []);
  assert.equal(past.hasMore, false);
});

await step('apps.list(101) -> 400 bad_request (limit 1..100)', () =>
  refused(() => account.apps.list(101), 400, 'bad_request'));

await step('apps.list(limit, offset, serviceAccountId) -> 501 not_implemented', () =>
  refused(() => account.apps.list(10, 1, 'sa_0000'), 501, 'not_implemented'));

await step('apps.get(appId) -> { app }', async () => {
  const { app } = await account.apps.get(main._id);
  assert.deepEqual(app, main);
});

await step('apps.get(unknown ids, whatever their shape) -> 404 not_found', async () => {
  await refused(() => account.apps.get(crypto.randomUUID()), 404, 'not_found');
  await refused(() => account.apps.get('5a0b1f7e0bd4ed003e1b4f7a'), 404, 'not_found');
  await refused(() => account.apps.get('nope'), 404, 'not_found');
});

await step('apps.update(appId, { name, metadata }) -> { app } with the given fields, others kept', async () => {
  const newName = name('other-renamed');
  const { app } = await account.apps.update(other._id, { name: newName, metadata: { team: 'sales' } });
  assert.equal(app._id, other._id);
  assert.equal(app.name, newName);
  assert.deepEqual(app.metadata, { team: 'sales' });
  assert.deepEqual(app.settings, other.settings, 'settings kept');
  assert.equal(app.appToken, other.appToken, 'appToken never changes');
  const again = await account.apps.get(other._id);
  assert.deepEqual(again.app, app);
  other.name = newName;
});

await step('apps.update to a taken name -> 409 conflict', () =>
  refused(() => account.apps.update(other._id, { name: mainName }), 409, 'conflict'));

await step('apps.update with an unknown field -> 400 bad_request; a wrong type -> 400', async () => {
  await refused(() => account.apps.update(other._id, { bogus: 1 }), 400, 'bad_request');
  await refused(() => account.apps.update(other._id, { name: 12 }), 400, 'bad_request');
  await refused(() => account.apps.update(other._id, { metadata: { nested: { no: 1 } } }), 400, 'bad_request');
});

await step('apps.update of an unknown app -> 404 not_found', () =>
  refused(() => account.apps.update(crypto.randomUUID(), { name: name('x') }), 404, 'not_found'));

if (V8) {
  await step('apps.getSdkIds(appId) -> 501 not_implemented', () =>
    refused(() => account.apps.getSdkIds(main._id), 501, 'not_implemented'));
}

await step('apps.delete(appId) -> {}; then apps.get -> 404', async () => {
  const answer = await account.apps.delete(third._id);
  assert.deepEqual(answer, {});
  await refused(() => account.apps.get(third._id), 404, 'not_found');
  await refused(() => account.apps.delete(third._id), 404, 'not_found');
});

// ---------------------------------------------------------------------------------------------
// 8.5 App keys

const appKey = await step('apps.keys.create(appId, name) -> 201 { key: { _id, name, secret } }', async () => {
  const { key } = await account.apps.keys.create(main._id, 'main key');
  assert.match(key._id, /^app_[0-9a-f]{32}$/);
  assert.equal(key.name, 'main key');
  assert.match(key.secret, /^[A-Za-z0-9_-]{43}$/, 'secret: 32 bytes base64url, no padding');
  return key;
});

const doomedKey = await step('apps.keys.create a second key (the same name is allowed)', async () => {
  const { key } = await account.apps.keys.create(main._id, 'main key');
  assert.notEqual(key._id, appKey._id);
  return key;
});

await step('apps.keys.list(appId) -> { keys }, oldest first', async () => {
  const { keys } = await account.apps.keys.list(main._id);
  assert.deepEqual(keys.map((k) => k._id), [appKey._id, doomedKey._id]);
  assert.equal(keys[0].secret, appKey.secret);
});

await step('apps.keys.get(appId, keyId) -> { key }', async () => {
  const { key } = await account.apps.keys.get(main._id, appKey._id);
  assert.deepEqual([key._id, key.name, key.secret], [appKey._id, appKey.name, appKey.secret]);
});

await step("apps.keys.get of another app's key -> 404; unknown key -> 404", async () => {
  await refused(() => account.apps.keys.get(other._id, appKey._id), 404, 'not_found');
  await refused(() => account.apps.keys.get(main._id, `app_${'0'.repeat(32)}`), 404, 'not_found');
});

await step('apps.keys.create with an empty name -> 400 bad_request', () =>
  refused(() => account.apps.keys.create(main._id, ''), 400, 'bad_request'));

const appJwt = await step('apps.keys.getJwt(appId, keyId) -> { jwt }: HS256, kid, scope app, iat, no exp', async () => {
  const { jwt } = await account.apps.keys.getJwt(main._id, appKey._id);
  const { header, payload, signingInput, signature } = decodeJwt(jwt);
  assert.deepEqual(header, { alg: 'HS256', typ: 'JWT', kid: appKey._id });
  assert.equal(payload.scope, 'app');
  assert.equal(typeof payload.iat, 'number');
  assert.equal(payload.exp, undefined);
  assert.equal(hs256(signingInput, appKey.secret), signature, 'signed with the key\'s secret');
  return jwt;
});

const app = await step('new Smooch({ jwt }) with the getJwt token: an app-scope client', () => {
  const c = new Smooch({ jwt: appJwt, serviceUrl });
  assert.equal(c.scope, 'app');
  return c;
});

const doomed = new Smooch({ keyId: doomedKey._id, secret: doomedKey.secret, scope: 'app', serviceUrl });
await step('an app-scope client from the second key works', async () => {
  const { webhooks } = await doomed.webhooks.list();
  assert.ok(Array.isArray(webhooks));
});

await step('apps.keys.delete(appId, keyId) -> {}; the key is gone', async () => {
  assert.deepEqual(await account.apps.keys.delete(main._id, doomedKey._id), {});
  await refused(() => account.apps.keys.get(main._id, doomedKey._id), 404, 'not_found');
  const { keys } = await account.apps.keys.list(main._id);
  assert.deepEqual(keys.map((k) => k._id), [appKey._id]);
});

await step("a deleted key's tokens are refused -> 401 unauthorized", () =>
  refused(() => doomed.webhooks.list(), 401, 'unauthorized'));

await step('a wrong secret -> 401 unauthorized', () => {
  const wrong = new Smooch({ keyId, secret: `${secret}x`, scope: 'account', serviceUrl });
  return refused(() => wrong.apps.list(), 401, 'unauthorized');
});

await step('an unknown key id -> 401 unauthorized', () => {
  const unknown = new Smooch({ keyId: `act_${'0'.repeat(32)}`, secret, scope: 'account', serviceUrl });
  return refused(() => unknown.apps.list(), 401, 'unauthorized');
});

await step('an account key signing scope app (a wrong pairing) -> 401 unauthorized', () => {
  const wrong = new Smooch({ keyId, secret, scope: 'app', serviceUrl });
  return refused(() => wrong.webhooks.list(), 401, 'unauthorized');
});

await step('an app key signing scope account (a wrong pairing) -> 401 unauthorized', () => {
  const wrong = new Smooch({ keyId: appKey._id, secret: appKey.secret, scope: 'account', serviceUrl });
  return refused(() => wrong.apps.list(), 401, 'unauthorized');
});

if (V8) {
  await step('app scope on apps.list / apps.get / apps.keys -> 403 forbidden', async () => {
    await refused(() => app.apps.list(), 403, 'forbidden');
    await refused(() => app.apps.get(main._id), 403, 'forbidden');
    await refused(() => app.apps.keys.list(), 403, 'forbidden');
  });
} else {
  await step('smooch-core 6 refuses apps and integrations for app scope itself', async () => {
    await refusedByClient(() => app.apps.list(), /account level scope/);
    await refusedByClient(() => app.integrations.list(), /account level scope/);
  });
}

// ---------------------------------------------------------------------------------------------
// 8.6 Integrations (providers offline)

const integrationSpecs = [
  { type: 'telegram', body: { token: '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw' }, secrets: ['token'], pub: {} },
  {
    type: 'twilio',
    body: {
      accountSid: `AC${'a1b2c3d4'.repeat(4)}`,
      authToken: 'twilio-auth-token-0001',
      phoneNumberSid: `PN${'0f1e2d3c'.repeat(4)}`,
    },
    secrets: ['authToken'],
    pub: { accountSid: `AC${'a1b2c3d4'.repeat(4)}`, phoneNumberSid: `PN${'0f1e2d3c'.repeat(4)}` },
  },
  {
    type: 'messenger',
    body: { pageAccessToken: 'EAAB-page-token', appId: '1674554616147204', appSecret: 'fb-app-secret' },
    secrets: ['pageAccessToken', 'appSecret'],
    pub: { appId: '1674554616147204' },
  },
  { type: 'line', body: { channelAccessToken: 'line-access-token', channelSecret: 'line-channel-secret' }, secrets: ['channelAccessToken', 'channelSecret'], pub: {} },
  { type: 'viber', body: { token: '4a4e2b7f1d0c9a8b-viber-token' }, secrets: ['token'], pub: {} },
  {
    type: 'wechat',
    body: { appId: 'wx1234567890abcdef', appSecret: 'wechat-app-secret', encodingAesKey: 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG' },
    secrets: ['appSecret', 'encodingAesKey'],
    pub: { appId: 'wx1234567890abcdef' },
    generated: ['webhookSecret'],
  },
  {
    type: 'twitter',
    body: { consumerKey: 'tw-consumer-key', consumerSecret: 'tw-consumer-secret', accessTokenKey: '1-tw-access-key', accessTokenSecret: 'tw-access-secret' },
    secrets: ['consumerSecret', 'accessTokenSecret'],
    pub: { consumerKey: 'tw-consumer-key', accessTokenKey: '1-tw-access-key' },
  },
  {
    type: 'mailgun',
    body: { apiKey: 'key-mailgun-0001', domain: 'mg.example.com', incomingAddress: 'support@mg.example.com' },
    secrets: ['apiKey'],
    pub: { domain: 'mg.example.com', incomingAddress: 'support@mg.example.com' },
  },
  {
    type: 'messagebird',
    body: { accessKey: 'messagebird-access-key', originator: '+15145550100' },
    secrets: ['accessKey'],
    pub: { originator: '+15145550100' },
    generated: ['webhookSecret'],
  },
  {
    type: 'apn',
    body: { certificate: Buffer.from('not really a PKCS#12 file').toString('base64'), password: 'p12-password', autoUpdateBadge: true },
    secrets: ['certificate', 'password'],
    pub: { autoUpdateBadge: true, production: false },
  },
  { type: 'fcm', body: { serverKey: 'fcm-server-key', senderId: '1234567890' }, secrets: ['serverKey'], pub: { senderId: '1234567890' } },
];

const integrations = {};
for (const spec of integrationSpecs) {
  integrations[spec.type] = await step(`integrations.create(appId, { type: '${spec.type}', … }) -> 201 { integration }`, async () => {
    const displayName = `${spec.type} ${run}`;
    const { integration } = await account.integrations.create(main._id, { type: spec.type, displayName, ...spec.body });
    assert.match(integration._id, UUID_LIKE);
    assert.equal(integration.type, spec.type);
    assert.equal(integration.displayName, displayName);
    assert.ok(['active', 'inactive'].includes(integration.status), `status ${integration.status}`);
    for (const s of spec.secrets) assert.equal(integration[s], undefined, `the secret ${s} is never answered`);
    for (const [k, v] of Object.entries(spec.pub)) assert.deepEqual(integration[k], v, `public field ${k}`);
    for (const g of spec.generated || []) assert.equal(typeof integration[g], 'string', `generated ${g}`);
    return integration;
  });
}

const unnamed = await step("integrations.create without displayName -> '<type> <integrationId>'", async () => {
  const { integration } = await account.integrations.create(other._id, { type: 'telegram', token: '987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw' });
  assert.equal(integration.displayName, `telegram ${integration._id}`);
  return integration;
});

await step('integrations.create with a taken displayName -> 409 conflict', () =>
  refused(
    () => account.integrations.create(main._id, { type: 'viber', token: 'other-viber-token', displayName: `viber ${run}` }),
    409,
    'conflict',
  ));

if (V8) {
  await step("integrations.create { type: 'line' } without its required fields -> 400 bad_request", () =>
    refused(() => account.integrations.create(main._id, { type: 'line' }), 400, 'bad_request'));
  await step("integrations.create { type: 'whatsapp' } (out of scope, 8.10) -> 400 bad_request", () =>
    refused(() => account.integrations.create(main._id, { type: 'whatsapp', baseUrl: 'https://x.example.com', username: 'u', password: 'p' }), 400, 'bad_request'));
  await step("smooch-core 8 refuses type 'frontendEmail' itself", () =>
    refusedByClient(() => account.integrations.create(main._id, { type: 'frontendEmail' }), /Unrecognized type: frontendEmail/));
}
await step("integrations.create { type: 'web' } (out of scope, 8.10) -> 400 bad_request", () =>
  refused(() => account.integrations.create(main._id, { type: 'web' }), 400, 'bad_request'));
await step('integrations.create with an unknown field -> 400 bad_request', () =>
  refused(() => account.integrations.create(main._id, { type: 'viber', token: 'v-token-2', nonsense: 'x' }), 400, 'bad_request'));
await step('integrations.create on an unknown app -> 404 not_found', () =>
  refused(() => account.integrations.create(crypto.randomUUID(), { type: 'viber', token: 'v-token-3' }), 404, 'not_found'));

const created = integrationSpecs.map((s) => integrations[s.type]._id);

await step('integrations.list(appId) -> every integration of the table, none of the compat Direct ones', async () => {
  const page = await account.integrations.list(main._id);
  assert.ok(Array.isArray(page.integrations));
  const ids = page.integrations.map((i) => i._id);
  assert.deepEqual(ids, created, 'all of them, oldest first, and nothing else');
  assert.ok(page.integrations.every((i) => i.type !== 'api'), 'no api (Direct) integration');
});

await step("integrations.list(appId, 'twilio') and (appId, ['twilio', 'line']) filter by type", async () => {
  const one = await account.integrations.list(main._id, 'twilio');
  assert.deepEqual(one.integrations.map((i) => i._id), [integrations.twilio._id]);
  const two = await account.integrations.list(main._id, ['twilio', 'line']);
  assert.deepEqual(two.integrations.map((i) => i._id).sort(), [integrations.twilio._id, integrations.line._id].sort());
});

await step("integrations.list(appId, 'web') (an unsupported Smooch type) -> none", async () => {
  const page = await account.integrations.list(main._id, 'web');
  assert.deepEqual(page.integrations, []);
});

await step("integrations.list(appId, 'bogus') -> 400 bad_request", () =>
  refused(() => account.integrations.list(main._id, 'bogus'), 400, 'bad_request'));

if (V8) {
  await step('integrations.list(appId, types, limit, offset) pages: { integrations, hasMore, offset }', async () => {
    const a = await account.integrations.list(main._id, undefined, 2);
    assert.deepEqual(a.integrations.map((i) => i._id), created.slice(0, 2));
    assert.equal(a.hasMore, true);
    assert.equal(a.offset, 0);
    const b = await account.integrations.list(main._id, undefined, 2, created.length - 1);
    assert.deepEqual(b.integrations.map((i) => i._id), created.slice(-1));
    assert.equal(b.hasMore, false);
    assert.equal(b.offset, created.length - 1);
  });
  await step('integrations.list with limit 101 -> 400 bad_request', () =>
    refused(() => account.integrations.list(main._id, undefined, 101), 400, 'bad_request'));
}

await step('integrations.get(appId, integrationId) -> { integration }', async () => {
  const { integration } = await account.integrations.get(main._id, integrations.twilio._id);
  assert.deepEqual(integration, integrations.twilio);
});

await step("integrations.get: unknown id, another app's id -> 404 not_found", async () => {
  await refused(() => account.integrations.get(main._id, crypto.randomUUID()), 404, 'not_found');
  await refused(() => account.integrations.get(main._id, unnamed._id), 404, 'not_found');
  await refused(() => account.integrations.get(main._id, 'nope'), 404, 'not_found');
});

await step('integrations.update(appId, id, { displayName, token }) -> { integration }', async () => {
  const displayName = `telegram renamed ${run}`;
  const { integration } = await account.integrations.update(main._id, integrations.telegram._id, {
    type: 'telegram',
    displayName,
    token: '123456789:BBHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw',
  });
  assert.equal(integration._id, integrations.telegram._id);
  assert.equal(integration.displayName, displayName);
  assert.equal(integration.token, undefined);
  const again = await account.integrations.get(main._id, integrations.telegram._id);
  assert.equal(again.integration.displayName, displayName);
});

await step('integrations.update changing the type -> 400 bad_request', () =>
  refused(() => account.integrations.update(main._id, integrations.viber._id, { type: 'telegram' }), 400, 'bad_request'));

await step('integrations.update to a taken displayName -> 409 conflict', () =>
  refused(() => account.integrations.update(main._id, integrations.viber._id, { displayName: `line ${run}` }), 409, 'conflict'));

if (V8) {
  await step('app scope: integrations.list(its app) works, another app -> 404 not_found', async () => {
    const page = await app.integrations.list(main._id);
    assert.deepEqual(page.integrations.map((i) => i._id), created);
    await refused(() => app.integrations.list(other._id), 404, 'not_found');
  });
}

await step('integrations.delete(appId, id) -> {}; then get -> 404', async () => {
  assert.deepEqual(await account.integrations.delete(main._id, integrations.fcm._id), {});
  await refused(() => account.integrations.get(main._id, integrations.fcm._id), 404, 'not_found');
  await refused(() => account.integrations.delete(main._id, integrations.fcm._id), 404, 'not_found');
});

await step('integrations.menu.get -> 501 not_implemented', () =>
  refused(() => account.integrations.menu.get(main._id, integrations.messenger._id), 501, 'not_implemented'));

if (V8) {
  await step('integrations.profile.get -> 501 not_implemented', () =>
    refused(() => account.integrations.profile.get(main._id, integrations.messenger._id), 501, 'not_implemented'));
}

// ---------------------------------------------------------------------------------------------
// 8.7 Webhooks

const crudTarget = `${receiver || 'https://hooks.example.com'}/crud-${CLIENT}`;

const hook = await step('webhooks.create(appId, { target }) -> 201 { webhook } with the defaults of this prefix', async () => {
  const { webhook } = await account.webhooks.create(main._id, { target: crudTarget });
  checkWebhook(webhook, crudTarget, DEFAULT_TRIGGERS, DEFAULT_FULL_APP_USER);
  return webhook;
});

await step('webhooks.list(appId) -> { webhooks }; get -> { webhook }', async () => {
  const { webhooks } = await account.webhooks.list(main._id);
  assert.deepEqual(webhooks.map((w) => w._id), [hook._id]);
  assert.deepEqual(webhooks[0], hook);
  const { webhook } = await account.webhooks.get(main._id, hook._id);
  assert.deepEqual(webhook, hook);
});

await step('a webhook is not an integration: integrations.get(webhook id) -> 404', () =>
  refused(() => account.integrations.get(main._id, hook._id), 404, 'not_found'));

await step('webhooks.update(appId, id, { triggers, includeClient }) keeps target and secret', async () => {
  const { webhook } = await account.webhooks.update(main._id, hook._id, { triggers: ['*'], includeClient: true });
  assert.equal(webhook._id, hook._id);
  assert.equal(webhook.target, hook.target);
  assert.equal(webhook.secret, hook.secret);
  assert.deepEqual(webhook.triggers, ['*']);
  assert.equal(webhook.includeClient, true);
  assert.equal(webhook.includeFullAppUser, hook.includeFullAppUser);
});

await step('webhooks.create with an unknown trigger -> 400; with no triggers -> 400; bad target -> 400', async () => {
  await refused(() => account.webhooks.create(main._id, { target: crudTarget, triggers: ['bogus'] }), 400, 'bad_request');
  await refused(() => account.webhooks.create(main._id, { target: crudTarget, triggers: [] }), 400, 'bad_request');
  await refused(() => account.webhooks.create(main._id, { target: 'http://' }), 400, 'bad_request');
  await refusedByClient(() => account.webhooks.create(main._id, { target: 'ftp://example.com' }), /Malformed target url/);
});

await step('webhooks.create accepts never-fired triggers', async () => {
  const { webhook } = await account.webhooks.create(main._id, { target: crudTarget, triggers: ['merge:appUser', 'delivery:failure'] });
  assert.deepEqual(webhook.triggers, ['merge:appUser', 'delivery:failure']);
  assert.deepEqual(await account.webhooks.delete(main._id, webhook._id), {});
});

await step('webhooks.delete(appId, id) -> {}; then get -> 404', async () => {
  assert.deepEqual(await account.webhooks.delete(main._id, hook._id), {});
  await refused(() => account.webhooks.get(main._id, hook._id), 404, 'not_found');
  const { webhooks } = await account.webhooks.list(main._id);
  assert.deepEqual(webhooks, []);
});

await step(`app scope: webhooks.create({ target }) on ${PREFIX}/webhooks, list, get, update, delete`, async () => {
  const { webhook } = await app.webhooks.create({ target: crudTarget, triggers: ['conversation:start'], includeFullAppUser: true });
  checkWebhook(webhook, crudTarget, ['conversation:start'], true);
  const { webhooks } = await app.webhooks.list();
  assert.deepEqual(webhooks.map((w) => w._id), [webhook._id]);
  assert.deepEqual((await app.webhooks.get(webhook._id)).webhook, webhook);
  // The account sees it on the app.
  assert.deepEqual((await account.webhooks.get(main._id, webhook._id)).webhook, webhook);
  const updated = (await app.webhooks.update(webhook._id, { target: `${crudTarget}/2` })).webhook;
  assert.equal(updated.target, `${crudTarget}/2`);
  assert.deepEqual(updated.triggers, ['conversation:start']);
  assert.deepEqual(await app.webhooks.delete(webhook._id), {});
  await refused(() => app.webhooks.get(webhook._id), 404, 'not_found');
});

await step("app scope: another app's webhooks -> 404 not_found", async () => {
  const { webhook } = await account.webhooks.create(other._id, { target: crudTarget });
  await refused(() => app.webhooks.get(webhook._id), 404, 'not_found');
  await account.webhooks.delete(other._id, webhook._id);
});

// The webhook the Rust test checks at its receiver: default triggers, left in place.
const keeper = receiver
  ? await step('webhooks.create(appId, { target: receiver }) with the default triggers, kept', async () => {
      const target = `${receiver}/v${CLIENT}`;
      const { webhook } = await account.webhooks.create(main._id, { target });
      checkWebhook(webhook, target, DEFAULT_TRIGGERS, DEFAULT_FULL_APP_USER);
      return webhook;
    })
  : null;

// ---------------------------------------------------------------------------------------------
// 8.8 App users

const userId = `user-${run}`;
const signedUpAt = new Date(Math.floor(Date.now() / 1000) * 1000 - 3600 * 1000);
const profile = {
  givenName: 'Ada',
  surname: 'Lovelace',
  email: 'ada@example.com',
  signedUpAt,
  properties: { plan: 'gold', seats: 3 },
};
const createUser = (client, id, props, appId) => {
  // 8.x: create(appId, { userId, …props }), or without an app id create({ appUser }) (one object
  // argument is read as named parameters); 6.x: create(appId?, userId, props).
  if (V8) {
    const appUser = { userId: id, ...props };
    return appId ? client.appUsers.create(appId, appUser) : client.appUsers.create({ appUser });
  }
  return appId ? client.appUsers.create(appId, id, props) : client.appUsers.create(id, props);
};

const user = await step('appUsers.create(appId, { userId, givenName, surname, email, signedUpAt, properties }) -> 201 { appUser }', async () => {
  const { appUser } = await createUser(account, userId, profile, main._id);
  assert.match(appUser._id, UUID_LIKE);
  assert.equal(appUser.userId, userId);
  assert.equal(appUser.givenName, 'Ada');
  assert.equal(appUser.surname, 'Lovelace');
  assert.equal(appUser.email, 'ada@example.com');
  assert.equal(new Date(appUser.signedUpAt).getTime(), signedUpAt.getTime(), `signedUpAt ${appUser.signedUpAt}`);
  assert.deepEqual(appUser.properties, { plan: 'gold', seats: 3 });
  assert.equal(appUser.conversationStarted, false);
  assert.deepEqual(appUser.pendingClients, []);
  assert.equal(appUser.clients.length, 1);
  const [c] = appUser.clients;
  assert.equal(c.id, appUser._id);
  assert.equal(c.platform, 'api');
  assert.equal(c.externalId, userId);
  assert.equal(c.active, true);
  assert.equal(typeof c.integrationId, 'string');
  assert.equal(typeof c.lastSeen, 'string');
  return appUser;
});

await step('appUsers.create with a taken userId -> 409 conflict', () =>
  refused(() => createUser(account, userId, {}, main._id), 409, 'conflict'));

await step('appUsers.create with an unknown field -> 400 bad_request', () =>
  refused(() => createUser(account, `${userId}-x`, { nickname: 'x' }, main._id), 400, 'bad_request'));

const second = await step('app scope: appUsers.create({ userId, credentialRequired }) (ignored field) -> 201', async () => {
  const { appUser } = await createUser(app, `${userId}-2`, { credentialRequired: true, givenName: 'Grace' });
  assert.equal(appUser.userId, `${userId}-2`);
  assert.equal(appUser.givenName, 'Grace');
  assert.equal(appUser.credentialRequired, undefined);
  return appUser;
});

await step('appUsers.get(appId, userId) and (appId, _id) -> { appUser }', async () => {
  const byUserId = (await account.appUsers.get(main._id, userId)).appUser;
  const byId = (await account.appUsers.get(main._id, user._id)).appUser;
  assert.deepEqual(byUserId, byId);
  assert.equal(byId._id, user._id);
  assert.equal(byId.userId, userId);
});

await step('appUsers.get: unknown user, another app -> 404 not_found', async () => {
  await refused(() => account.appUsers.get(main._id, 'nobody-at-all'), 404, 'not_found');
  await refused(() => account.appUsers.get(other._id, userId), 404, 'not_found');
});

await step('appUsers.update(appId, id, fields) -> fields replace, properties merge (null removes)', async () => {
  const { appUser } = await account.appUsers.update(main._id, userId, {
    givenName: 'Augusta',
    properties: { plan: null, seats: 4, region: 'eu' },
  });
  assert.equal(appUser._id, user._id);
  assert.equal(appUser.givenName, 'Augusta');
  assert.equal(appUser.surname, 'Lovelace');
  assert.deepEqual(appUser.properties, { seats: 4, region: 'eu' });
});

await step('appUsers.update with userId -> 400 bad_request', () =>
  refused(() => account.appUsers.update(main._id, userId, { userId: 'other' }), 400, 'bad_request'));

await step('appUsers.getChannels(appId, id) -> { channels: [ { type, integrationId, externalId } ] }', async () => {
  const { channels } = await account.appUsers.getChannels(main._id, userId);
  assert.equal(channels.length, 1);
  assert.equal(channels[0].type, 'api');
  assert.equal(channels[0].externalId, userId);
  assert.equal(channels[0].integrationId, user.clients[0].integrationId);
});

await step('no conversation yet: conversations.get and appUsers.getMessages -> 404 not_found', async () => {
  await refused(() => account.conversations.get(main._id, userId), 404, 'not_found');
  await refused(() => account.appUsers.getMessages(main._id, userId), 404, 'not_found');
});

// ---------------------------------------------------------------------------------------------
// 8.9 Messages

const bizText = `hello from the business ${run}`;
const first = await step("appUsers.sendMessage(appId, id, { role: 'appMaker', type: 'text' }) -> 201 { message, conversation }", async () => {
  const { message, conversation } = await account.appUsers.sendMessage(main._id, userId, {
    role: 'appMaker',
    type: 'text',
    text: bizText,
  });
  checkMessage(message, { type: 'text', text: bizText, role: 'appMaker', source: { type: 'api' } });
  assert.equal(typeof message.authorId, 'string');
  assert.equal(typeof message.name, 'string');
  checkConversation(conversation);
  return { message, conversation };
});

await step('app scope (getJwt token): appUsers.sendMessage as appMaker, with ignored fields', async () => {
  const { message, conversation } = await app.appUsers.sendMessage(userId, {
    role: 'appMaker',
    type: 'image',
    mediaUrl: 'https://example.com/cat.png',
    text: 'a cat',
    name: 'Bot',
    avatarUrl: 'https://example.com/bot.png',
    metadata: { k: 'v' },
  });
  checkMessage(message, { type: 'image', mediaUrl: 'https://example.com/cat.png', text: 'a cat', role: 'appMaker' });
  assert.equal(conversation._id, first.conversation._id, 'the same open conversation');
});

const userClient = await step("an appUser-scope client: keyId + secret + scope 'appUser' + userId (smooch-core's JWT)", () => {
  const c = new Smooch({ keyId: appKey._id, secret: appKey.secret, scope: 'appUser', userId, serviceUrl });
  const { header, payload } = decodeJwt(c.authHeaders.Authorization.slice('Bearer '.length));
  assert.equal(header.kid, appKey._id);
  assert.deepEqual([payload.scope, payload.userId], ['appUser', userId]);
  return c;
});

const userText = `hi from the app user ${run}`;
const fromUser = await step("appUser scope: appUsers.sendMessage(userId, { role: 'appUser', type: 'text' }) -> 201", async () => {
  const { message, conversation } = await userClient.appUsers.sendMessage(userId, { role: 'appUser', type: 'text', text: userText });
  checkMessage(message, { type: 'text', text: userText, role: 'appUser', authorId: user._id, source: { type: 'api' } });
  assert.equal(message.name, 'Augusta Lovelace');
  checkConversation(conversation);
  return message;
});

await step("appUser scope: role 'appMaker' -> 403; another app user -> 403; apps -> 403", async () => {
  await refused(() => userClient.appUsers.sendMessage(userId, { role: 'appMaker', type: 'text', text: 'x' }), 403, 'forbidden');
  await refused(() => userClient.appUsers.get(second.userId), 403, 'forbidden');
  if (V8) await refused(() => userClient.apps.list(), 403, 'forbidden');
});

await step('appUser scope: appUsers.get, update, getMessages, conversations.get, resetUnreadCount on itself', async () => {
  const { appUser } = await userClient.appUsers.get(userId);
  assert.equal(appUser._id, user._id);
  assert.equal(appUser.conversationStarted, true);
  const updated = (await userClient.appUsers.update(userId, { email: 'augusta@example.com' })).appUser;
  assert.equal(updated.email, 'augusta@example.com');
  const { messages } = await userClient.appUsers.getMessages(userId);
  assert.ok(messages.some((m) => m._id === fromUser._id));
  checkConversation((await userClient.conversations.get(userId)).conversation);
  checkConversation((await userClient.conversations.resetUnreadCount(userId)).conversation);
});

const typed = [
  [{ type: 'file', mediaUrl: 'https://example.com/report.pdf', text: 'the report' }, { type: 'file', mediaUrl: 'https://example.com/report.pdf' }],
  [
    { type: 'location', coordinates: { lat: 45.5017, long: -73.5673 }, location: { address: '1 Rue, Montréal' } },
    { type: 'location', coordinates: { lat: 45.5017, long: -73.5673 } },
  ],
  [
    {
      type: 'text',
      text: 'pick one',
      actions: [
        { type: 'reply', text: 'Yes', payload: 'YES' },
        { type: 'postback', text: 'Later', payload: 'LATER' },
        { type: 'link', text: 'Docs', uri: 'https://example.com/docs' },
      ],
    },
    { type: 'text', text: 'pick one' },
  ],
  [
    {
      type: 'carousel',
      items: [
        { title: 'One', description: 'first', mediaUrl: 'https://example.com/1.png', actions: [{ type: 'postback', text: 'Buy one', payload: 'ONE' }] },
        { title: 'Two', actions: [{ type: 'link', text: 'See', uri: 'https://example.com/2' }] },
      ],
    },
    { type: 'carousel' },
  ],
  [{ type: 'list', items: [{ title: 'Alpha' }, { title: 'Beta', description: 'b' }] }, { type: 'list' }],
];
for (const [body, expect] of typed) {
  await step(`appUsers.sendMessage appMaker type '${body.type}'${body.actions ? ' with actions' : ''} -> 201`, async () => {
    const { message } = await account.appUsers.sendMessage(main._id, userId, { role: 'appMaker', ...body });
    checkMessage(message, { role: 'appMaker', ...expect });
    if (body.items) {
      assert.deepEqual(message.items.map((i) => i.title), body.items.map((i) => i.title));
    }
    if (body.actions) {
      assert.deepEqual(message.actions.map((a) => a.type), body.actions.map((a) => a.type));
      assert.deepEqual(message.actions.map((a) => a.text), body.actions.map((a) => a.text));
    }
  });
}

await step('appUsers.sendMessage refusals -> 400 bad_request (type form, role whisper, no text, buy action, no mediaUrl)', async () => {
  const send = (body) => account.appUsers.sendMessage(main._id, userId, body);
  await refused(() => send({ role: 'appMaker', type: 'form', fields: [] }), 400, 'bad_request');
  await refused(() => send({ role: 'whisper', type: 'text', text: 'x' }), 400, 'bad_request');
  await refused(() => send({ role: 'appMaker', type: 'text' }), 400, 'bad_request');
  await refused(() => send({ role: 'appMaker', type: 'text', text: 'x', actions: [{ type: 'buy', text: 'Pay', amount: 100 }] }), 400, 'bad_request');
  await refused(() => send({ role: 'appMaker', type: 'image' }), 400, 'bad_request');
  await refused(() => send({ type: 'text', text: 'no role' }), 400, 'bad_request');
});

await step('appUsers.sendMessage to an unknown app user -> 404 not_found', () =>
  refused(() => account.appUsers.sendMessage(main._id, 'nobody-at-all', { role: 'appMaker', type: 'text', text: 'x' }), 404, 'not_found'));

const history = await step('appUsers.getMessages(appId, id) -> { conversation, messages } oldest first, no previous/next', async () => {
  const page = await account.appUsers.getMessages(main._id, userId);
  checkConversation(page.conversation);
  const { messages } = page;
  assert.equal(messages.length, 3 + typed.length);
  assert.equal(messages[0]._id, first.message._id);
  assert.equal(messages[2]._id, fromUser._id);
  for (let i = 1; i < messages.length; i++) {
    assert.ok(messages[i - 1].received <= messages[i].received, 'oldest first');
  }
  assert.equal(page.previous, undefined);
  assert.equal(page.next, undefined);
  return messages;
});

await step('appUsers.getMessages(appId, id, { after }) / ({ before }) page with previous / next', async () => {
  const firstAt = history[0].received;
  const lastAt = history[history.length - 1].received;
  const after = await account.appUsers.getMessages(main._id, userId, { after: firstAt });
  assert.ok(after.messages.every((m) => m.received > firstAt));
  assert.ok(after.messages.length >= 1 && after.messages.length < history.length);
  assert.equal(typeof after.previous, 'string', 'previous: older ones exist');
  assert.match(after.previous, new RegExp(`^https?://[^/]+${PREFIX.replace('.', '\\.')}/apps/${main._id}/appusers/[^/]+/messages\\?before=`));
  const before = await account.appUsers.getMessages(main._id, userId, { before: lastAt });
  assert.ok(before.messages.every((m) => m.received < lastAt));
  assert.equal(typeof before.next, 'string', 'next: newer ones exist');
  assert.match(before.next, /\?after=/);
  await refusedByClient(() => account.appUsers.getMessages(main._id, userId, { before: lastAt, after: firstAt }), /mutually exclusive/);
});

await step('conversations.get(appId, id) -> { conversation, messages }', async () => {
  const { conversation, messages } = await account.conversations.get(main._id, userId);
  checkConversation(conversation);
  assert.deepEqual(messages.map((m) => m._id), history.map((m) => m._id));
});

await step("appUsers.conversationActivity(appId, id, { role: 'appMaker', type }) -> { conversation }", async () => {
  for (const type of ['typing:start', 'typing:stop', 'conversation:read']) {
    const { conversation } = await account.appUsers.conversationActivity(main._id, userId, { role: 'appMaker', type, name: 'ignored' });
    checkConversation(conversation);
  }
  await refused(() => account.appUsers.conversationActivity(main._id, userId, { role: 'appMaker', type: 'dancing' }), 400, 'bad_request');
});

if (!V8) {
  await step("appUsers.typingActivity(appId, id, { role: 'appMaker', type: 'typing:start' }) (6.x) -> { conversation }", async () => {
    const { conversation } = await account.appUsers.typingActivity(main._id, userId, { role: 'appMaker', type: 'typing:start' });
    checkConversation(conversation);
  });
}

await step('conversations.resetUnreadCount(appId, id) -> { conversation } (unreadCount 0)', async () => {
  const { conversation } = await account.conversations.resetUnreadCount(main._id, userId);
  checkConversation(conversation);
});

await step('a second app user without a conversation: getMessages -> 404; after a message, app scope reads it', async () => {
  await refused(() => app.appUsers.getMessages(second.userId), 404, 'not_found');
  await app.appUsers.sendMessage(second.userId, { role: 'appMaker', type: 'text', text: 'welcome' });
  const { messages } = await app.appUsers.getMessages(second.userId);
  assert.deepEqual(messages.map((m) => m.text), ['welcome']);
});

// ---------------------------------------------------------------------------------------------
// 8.10 Out of scope: 501, through the client's own calls

const notImplemented = [
  ['menu.get(appId)', () => account.menu.get(main._id)],
  ['appUsers.delete(appId, id)', () => account.appUsers.delete(main._id, userId)],
  ['appUsers.deleteMessages(appId, id)', () => account.appUsers.deleteMessages(main._id, userId)],
  ['appUsers.deleteProfile(appId, id)', () => account.appUsers.deleteProfile(main._id, userId)],
  ['appUsers.linkChannel(appId, id, data)', () => account.appUsers.linkChannel(main._id, userId, { type: 'twilio', phoneNumber: '+15145550100' })],
  ['appUsers.unlinkChannel(appId, id, channel)', () => account.appUsers.unlinkChannel(main._id, userId, 'twilio')],
  ['appUsers.pingChannel(appId, id, channel)', () => account.appUsers.pingChannel(main._id, userId, 'twilio')],
  ['appUsers.getAuthCode(appId, id)', () => account.appUsers.getAuthCode(main._id, userId)],
  ['appUsers.getLinkRequests(appId, id, ids)', () => account.appUsers.getLinkRequests(main._id, userId, [integrations.messenger._id])],
  ['conversations.postPostback(appId, id, actionId)', () => account.conversations.postPostback(main._id, userId, 'action-1')],
  ['serviceAccounts.list()', () => account.serviceAccounts.list()],
  ['appUsers.getBusinessSystems(appId, id)', () => account.appUsers.getBusinessSystems(main._id, userId)],
  ['appUsers.deleteMessage(appId, id, messageId)', () => account.appUsers.deleteMessage(main._id, userId, first.message._id)],
];
if (V8) {
  notImplemented.push(
    ['appUsers.mergeUsers(appId, props)', () => account.appUsers.mergeUsers(main._id, { surviving: user._id, discarded: second._id })],
    ['templates.list(appId)', () => account.templates.list(main._id)],
    ['notifications.postNotification(appId, …)', () => account.notifications.postNotification(main._id, { destination: { integrationId: integrations.twilio._id, destinationId: '+15145550100' }, author: { role: 'appMaker' }, message: { type: 'text', text: 'x' } })],
    ['deployments.list()', () => account.deployments.list()],
  );
}
for (const [title, call] of notImplemented) {
  await step(`${title} -> 501 not_implemented`, () => refused(call, 501, 'not_implemented'));
}

// ---------------------------------------------------------------------------------------------
// 403: account scope on app-implicit routes, through a client that signs its own scope

await step(`account scope on the app-implicit ${PREFIX}/webhooks, ${PREFIX}/appusers -> 403 forbidden`, async () => {
  // An 'appMaker' token is account scope (SPEC 8.3), but smooch-core only prefixes /apps/{appId}
  // for 'account': its calls reach the app-implicit routes.
  const maker = new Smooch({ keyId, secret, scope: 'appMaker', serviceUrl });
  await refused(() => maker.webhooks.list(), 403, 'forbidden');
  await refused(() => maker.appUsers.get(userId), 403, 'forbidden');
  if (V8) {
    // And apps, which take no app id, work for it.
    const { app: got } = await maker.apps.get(main._id);
    assert.equal(got._id, main._id);
  }
});

await step('app scope after its app is deleted -> 401 (its keys die with the hub)', async () => {
  const { app: gone } = await account.apps.create(name('gone'));
  const { key } = await account.apps.keys.create(gone._id, 'short-lived');
  const c = new Smooch({ keyId: key._id, secret: key.secret, scope: 'app', serviceUrl });
  await c.webhooks.list();
  await account.apps.delete(gone._id);
  await refused(() => c.webhooks.list(), 401, 'unauthorized');
});

await step('apps.delete of the other app -> {}', async () => {
  assert.deepEqual(await account.apps.delete(other._id), {});
});

const result = {
  client: clientVersion,
  appId: main._id,
  appUser: { _id: user._id, userId },
  userText,
  bizText,
  webhook: keeper && { _id: keeper._id, target: keeper.target, secret: keeper.secret, triggers: keeper.triggers },
};
console.log(`RESULT ${JSON.stringify(result)}`);
console.log('all steps passed');
