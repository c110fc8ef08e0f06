// Smooch code against Switchboard: only `serviceUrl` and the key change.
// Run: SB_URL=http://localhost:8080 SB_KEY_ID=act_… SB_KEY_SECRET=… node example.mjs
import Smooch from 'smooch-core';

const serviceUrl = process.env.SB_URL; // the server root, not …/v1.1
const webhookTarget = process.env.SB_WEBHOOK_TARGET || 'https://example.com/smooch-webhook';

// An account key (`act_…`): smooch-core signs its own HS256 JWT with it.
const smooch = new Smooch({
  keyId: process.env.SB_KEY_ID,
  secret: process.env.SB_KEY_SECRET,
  scope: 'account',
  serviceUrl,
});

// An app is a Switchboard hub.
const { app } = await smooch.apps.create(`shop-${Date.now()}`);

// An app key, and a JWT for it (scope `app`).
const { key } = await smooch.apps.keys.create(app._id, 'backend');
const { jwt } = await smooch.apps.keys.getJwt(app._id, key._id);

// A Telegram integration (its bot token is checked with Telegram unless providers are offline).
const { integration } = await smooch.integrations.create(app._id, {
  type: 'telegram',
  token: '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw',
  displayName: 'Shop bot',
});

// A webhook: a System integration posting Smooch-shaped bodies with `X-API-Key: <secret>`.
const { webhook } = await smooch.webhooks.create(app._id, { target: webhookTarget });

// The rest with the app's own token, as a backend would.
const appClient = new Smooch({ jwt, serviceUrl });
const { appUser } = await appClient.appUsers.create({
  appUser: { userId: 'customer-42', givenName: 'Ada', surname: 'Lovelace', properties: { plan: 'gold' } },
});
const { message, conversation } = await appClient.appUsers.sendMessage(appUser.userId, {
  role: 'appMaker',
  type: 'text',
  text: 'Welcome to the shop!',
});

console.log(JSON.stringify({
  appId: app._id,
  keyId: key._id,
  integrationId: integration._id,
  webhook: { _id: webhook._id, triggers: webhook.triggers, secret: webhook.secret },
  appUserId: appUser._id,
  messageId: message._id,
  conversationId: conversation._id,
}));
