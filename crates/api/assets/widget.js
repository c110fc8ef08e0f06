/*! Switchboard WebChat widget (SPEC 7.18.4): plain ES2018, no dependency, no build step.
 * Embed: <script src="{base}/webchat/v1/widget.js" data-integration-id="…" async></script>
 *   (data-open="true", data-title, data-color optional; base URL = the script's own src), or
 *   Switchboard.WebChat.init({ integrationId, baseUrl?, container?, open?, title?, color? }).
 * Instance API: open(), close(), send(text), destroy(), on(name, fn), off(name, fn);
 *   Switchboard.WebChat.get(integrationId) answers an integration's instance.
 * Events (to on() handlers, and on `document` as CustomEvent `switchboard:webchat:{name}`,
 * detail = { integrationId, … }): ready {conversationId, isNew}, open, close, connected,
 * disconnected {code}, message {activity}, sent {ref, eventId}, error {status, errors},
 * conversation {conversationId}, unavailable (paused: closed state), destroy.
 * localStorage: switchboard.webchat.{integrationId}.clientId and .leid. A page's first connection
 * resumes from 0 to show the history (past the stored leid: unread); reconnections resume from
 * the last eventId received.
 */
(function () {
'use strict';
const W = window;
const D = document;
const NS = (W.Switchboard = W.Switchboard || {});
if (NS.WebChat && NS.WebChat.version) return;

const SELF = '/webchat/v1/widget.js';
const script = D.currentScript;
const instances = new Map();

function baseOf(src) {
  if (!src) return '';
  try {
    const u = new URL(src, D.baseURI);
    const i = u.pathname.lastIndexOf(SELF);
    return u.origin + (i >= 0 ? u.pathname.slice(0, i) : '');
  } catch (e) {
    return '';
  }
}
const scriptBase = baseOf(script && script.src);

const store = {
  get(k) { try { return W.localStorage.getItem(k); } catch (e) { return null; } },
  set(k, v) { try { W.localStorage.setItem(k, String(v)); } catch (e) { } },
};

/** The URL as a string when it is an absolute http(s) URL, else null. */
function safeUrl(u) {
  try {
    const x = new URL(u);
    return /^https?:$/.test(x.protocol) ? x.href : null;
  } catch (e) {
    return null;
  }
}

function el(tag, cls, text, attrs) {
  const e = D.createElement(tag);
  if (cls) e.className = cls;
  if (text != null && text !== '') e.textContent = String(text);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  return e;
}

function str(v) {
  return typeof v === 'string' ? v : v == null ? '' : typeof v === 'object' ? '' : String(v);
}

function link(href, text, cls) {
  const a = el('a', cls, text);
  a.href = href;
  a.target = '_blank';
  a.rel = 'noopener';
  return a;
}

const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;

/** Text with its http(s) URLs as links, every piece inserted as text. */
function linkify(text, cls) {
  const p = el('div', cls);
  let last = 0;
  text.replace(URL_RE, (m, at) => {
    let u = m;
    while (/[.,;:!?)\]}'"]$/.test(u)) u = u.slice(0, -1);
    const href = safeUrl(u);
    if (!href) return m;
    if (at > last) p.appendChild(D.createTextNode(text.slice(last, at)));
    p.appendChild(link(href, u));
    last = at + u.length;
    return m;
  });
  if (last < text.length) p.appendChild(D.createTextNode(text.slice(last)));
  return p;
}

function image(src, alt, cls) {
  const i = el('img', cls);
  i.setAttribute('referrerpolicy', 'no-referrer');
  i.alt = alt;
  i.src = src;
  return i;
}

function svg(path) {
  const s = D.createElementNS('http://www.w3.org/2000/svg', 'svg');
  s.setAttribute('viewBox', '0 0 24 24');
  s.setAttribute('aria-hidden', 'true');
  const p = D.createElementNS('http://www.w3.org/2000/svg', 'path');
  p.setAttribute('d', path);
  s.appendChild(p);
  return s;
}
const ICON_CHAT = 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 1-2zm3 6v2h10V9zm0 4v2h7v-2zm0-8v2h10V5z';
const ICON_SEND = 'M3 20.5 21 12 3 3.5V10l12 2-12 2z';

function time(ms) {
  const t = typeof ms === 'number' && ms > 0 ? new Date(ms) : new Date();
  return t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

const CSS = `
:host{all:initial}
*{box-sizing:border-box}
.w{--c:#2563eb;font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#111827}
button{font:inherit;cursor:pointer}
.launch{position:fixed;right:20px;bottom:20px;width:58px;height:58px;border-radius:50%;border:0;background:var(--c);color:#fff;box-shadow:0 6px 18px #0004;z-index:2147483000;display:flex;align-items:center;justify-content:center}
svg{width:26px;height:26px;fill:currentColor}
.badge{position:absolute;top:-3px;right:-3px;min-width:20px;height:20px;border-radius:10px;background:#dc2626;font-size:12px;line-height:20px;padding:0 6px}
.badge:empty{display:none}
.panel{position:fixed;right:20px;bottom:90px;width:380px;height:600px;max-height:calc(100vh - 110px);display:none;flex-direction:column;background:#fff;border-radius:16px;box-shadow:0 12px 40px #0004;overflow:hidden;z-index:2147483001}
.open .panel{display:flex}
.head{background:var(--c);color:#fff;padding:14px 12px 14px 18px;display:flex;align-items:center;gap:10px}
.head div{min-width:0}
.title{font-weight:600;font-size:17px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.status{font-size:12px;opacity:.85}
.x{margin-left:auto;background:none;border:0;color:inherit;font-size:26px;width:40px;height:40px;border-radius:10px;flex:none}
.x:hover{background:#fff3}
.log{flex:1;overflow-y:auto;padding:16px 14px;background:#f3f4f6;display:flex;flex-direction:column;gap:10px;overscroll-behavior:contain}
.row{display:flex;flex-direction:column;max-width:85%}
.row.wide{max-width:100%}
.me{align-self:flex-end;align-items:flex-end}
.them{align-self:flex-start;align-items:flex-start}
.bubble,.typing{padding:9px 13px;border-radius:18px;background:#fff;overflow-wrap:anywhere;box-shadow:0 1px 2px #0002;display:flex;flex-direction:column;gap:6px;max-width:100%}
.me .bubble{background:var(--c);color:#fff;border-bottom-right-radius:5px}
.them .bubble{border-bottom-left-radius:5px}
.bubble a{color:inherit}
.bubble.rich{background:none;box-shadow:none;padding:0}
.txt,.cd{white-space:pre-wrap}
.time,.note{font-size:11px;color:#6b7280;margin:3px 6px 0}
.note{align-self:center;text-align:center}
.pending .bubble{opacity:.65}
.failed .time{color:#dc2626;cursor:pointer}
.media{display:block;max-width:100%;max-height:260px;border-radius:12px}
audio.media{width:250px}
.cards{display:flex;gap:10px;overflow-x:auto;max-width:100%;padding-bottom:4px}
.cards.list{flex-direction:column}
.card{background:#fff;color:#111827;border:1px solid #e5e7eb;border-radius:14px;overflow:hidden;flex:none;width:230px}
.list .card{width:auto;min-width:230px}
.card img{display:block;width:100%;height:130px;object-fit:cover;background:#e5e7eb}
.cb{padding:10px 12px}
.ct{font-weight:600}
.cd{color:#4b5563;font-size:13px}
.acts{display:flex;flex-direction:column;gap:6px;padding:0 12px 12px}
.bubble>.acts{padding:0}
.btn{display:block;text-align:center;padding:7px 12px;border:1px solid var(--c);border-radius:18px;background:#fff;color:var(--c);font-size:14px;text-decoration:none}
.btn:hover,.btn[aria-pressed=true]{background:var(--c);color:#fff}
.typing{align-self:flex-start;display:none;flex-direction:row;gap:4px;padding:12px 14px}
.typing.on{display:flex}
.typing i{width:7px;height:7px;border-radius:50%;background:#9ca3af;animation:b 1.2s infinite}
.typing i:nth-child(2){animation-delay:.2s}.typing i:nth-child(3){animation-delay:.4s}
@keyframes b{30%{transform:translateY(-4px)}}
.compose{display:flex;gap:8px;align-items:flex-end;padding:10px 12px;border-top:1px solid #e5e7eb}
textarea{flex:1;resize:none;border:1px solid #d1d5db;border-radius:20px;padding:9px 15px;font:inherit;font-size:16px;line-height:20px;height:40px;max-height:130px;outline:none;color:inherit}
textarea:focus{border-color:var(--c)}
.send{width:40px;height:40px;border-radius:50%;border:0;background:var(--c);color:#fff;display:flex;align-items:center;justify-content:center;flex:none}
.send svg{width:20px}
.send:disabled,.closed .compose{opacity:.5}
button:focus-visible,a:focus-visible{outline:2px solid #f59e0b;outline-offset:2px}
.inline .launch{display:none}
.inline .panel{position:relative;right:auto;bottom:auto;width:100%;height:100%;max-height:none;border-radius:0;box-shadow:none}
@media (max-width:480px){.w:not(.inline) .panel{right:0;bottom:0;width:100%;height:100%;max-height:none;border-radius:0}.open .launch{display:none}}
`;

function isCustomer(a) {
  return (a.sender && a.sender.integrationType === 'Customer') || /^(message|event):customer/.test(str(a.eventTrigger));
}

class Chat {
  constructor(o) {
    this.id = String(o.integrationId);
    this.base = String(o.baseUrl || scriptBase || W.location.origin).replace(/\/+$/, '');
    this.key = 'switchboard.webchat.' + this.id + '.';
    this.clientId = store.get(this.key + 'clientId');
    this.readMark = Number(store.get(this.key + 'leid')) || 0;
    this.cursor = 0; // resume point of this page: 0 first, for the history
    this.handlers = {};
    this.seen = new Set(); // eventIds rendered
    this.byEvent = new Map(); // eventId -> local copy node
    this.pending = new Map(); // ref -> { node, kind }
    this.deferred = []; // echoes that came before their ack
    this.outbox = [];
    this.seq = 0;
    this.delay = 1000;
    this.unread = 0;
    this.ui(o);
    this.onOnline = () => { if (this.retryTimer) { clearTimeout(this.retryTimer); this.retryTimer = null; this.start(); } };
    W.addEventListener('online', this.onOnline);
    if (o.open || this.inline) this.open();
  }

  // ---- UI
  ui(o) {
    let box = o.container;
    if (typeof box === 'string') box = D.querySelector(box);
    this.inline = !!box;
    this.host = el('div', '', '', { 'data-switchboard-webchat': this.id });
    const root = (this.root = this.host.attachShadow({ mode: 'open' }));
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (e) {
      root.appendChild(el('style', '', CSS));
    }
    const w = (this.w = el('div', 'w' + (box ? ' inline' : '')));
    if (/^#[0-9a-f]{3,8}$|^[a-z]+$/i.test(str(o.color))) w.style.setProperty('--c', o.color);
    const launch = (this.launcher = el('button', 'launch', '', { type: 'button', 'aria-label': 'Open chat' }));
    launch.appendChild(svg(ICON_CHAT));
    this.badge = launch.appendChild(el('span', 'badge'));
    launch.addEventListener('click', () => (this.isOpen ? this.close() : this.open()));

    const title = str(o.title) || 'Chat with us';
    const panel = el('div', 'panel', '', { role: 'dialog', 'aria-label': title });
    const head = panel.appendChild(el('div', 'head'));
    const names = head.appendChild(el('div'));
    this.fixedTitle = !!str(o.title);
    this.titleEl = names.appendChild(el('div', 'title', title));
    this.status = names.appendChild(el('div', 'status', '', { 'aria-live': 'polite' }));
    head.appendChild(el('button', 'x', '\u00d7', { type: 'button', 'aria-label': 'Close chat' })).addEventListener('click', () => this.close());

    this.log = panel.appendChild(el('div', 'log', '', { role: 'log', 'aria-live': 'polite' }));
    this.typing = this.log.appendChild(el('div', 'typing', '', { 'aria-label': 'typing' }));
    for (let i = 0; i < 3; i++) this.typing.appendChild(el('i'));

    const form = panel.appendChild(el('div', 'compose'));
    const ta = (this.input = form.appendChild(el('textarea', '', '', { rows: 1, placeholder: 'Type a message\u2026', 'aria-label': 'Message' })));
    this.sendButton = form.appendChild(el('button', 'send', '', { type: 'button', 'aria-label': 'Send' }));
    this.sendButton.appendChild(svg(ICON_SEND));
    this.sendButton.addEventListener('click', () => this.submit());
    ta.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      }
    });
    ta.addEventListener('input', () => { this.grow(); this.typingOn(); });
    ta.addEventListener('blur', () => this.typingOff());
    panel.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !box) this.close(); });
    w.append(panel, launch);
    root.appendChild(w);
    (box || D.body).appendChild(this.host);
  }

  grow() {
    const ta = this.input;
    ta.style.height = 'auto';
    ta.style.height = Math.min(ta.scrollHeight + 2, 130) + 'px';
  }

  setStatus(text) {
    this.status.textContent = text;
  }

  nearBottom() {
    const l = this.log;
    return l.scrollHeight - l.scrollTop - l.clientHeight < 80;
  }

  scroll(force) {
    if (force || this.nearBottom()) this.log.scrollTop = this.log.scrollHeight;
  }

  /** Appends a row before the typing indicator. */
  add(node, force) {
    const stick = force || this.nearBottom();
    this.log.insertBefore(node, this.typing);
    if (stick) this.log.scrollTop = this.log.scrollHeight;
    return node;
  }

  note(text) {
    const last = this.typing.previousSibling;
    if (last && last.className === 'note' && last.textContent === text) return last;
    return this.add(el('div', 'note', text), true);
  }

  /** A message row: `me` for the customer's own, else an agent's or bot's. */
  row(mine, message, ms) {
    const r = el('div', 'row ' + (mine ? 'me' : 'them'));
    this.fill(r, message, ms);
    return r;
  }

  fill(r, message, ms) {
    r.textContent = '';
    r.setAttribute('data-type', str(message && message.type));
    const content = this.render(message || {});
    const rich = /^(card|carousel|list)$/.test(str(message && message.type));
    r.classList.toggle('wide', str(message && message.type) === 'carousel');
    const b = r.appendChild(el('div', 'bubble' + (rich ? ' rich' : '')));
    b.appendChild(content);
    r.appendChild(el('div', 'time', time(ms)));
    r.querySelectorAll('img').forEach((i) => i.addEventListener('load', () => this.scroll()));
  }

  render(m) {
    const f = D.createDocumentFragment();
    const type = str(m.type);
    const caption = str(m.caption) || str(m.title);
    const url = safeUrl(m.url);
    switch (type) {
      case 'text':
        if (str(m.text)) f.appendChild(linkify(str(m.text), 'txt'));
        if (Array.isArray(m.items)) {
          m.items.forEach((it) => {
            if (!it || typeof it !== 'object') return;
            const t = str(it.title) + (str(it.description) ? ' \u2014 ' + str(it.description) : '');
            if (t) f.appendChild(el('div', 'txt', '\u2022 ' + t));
          });
        }
        if (Array.isArray(m.actions) && m.actions.length) f.appendChild(this.actions(m.actions));
        break;
      case 'image':
        if (url) {
          f.appendChild(link(url, '')).appendChild(image(url, caption || 'Image', 'media'));
        } else f.appendChild(el('div', 'txt', '[image] ' + str(m.url)));
        if (caption) f.appendChild(linkify(caption, 'txt'));
        break;
      case 'video':
      case 'audio':
        if (url) {
          const p = el(type, 'media');
          p.controls = true;
          p.preload = 'metadata';
          p.src = url;
          f.appendChild(p);
        } else f.appendChild(el('div', 'txt', '[' + type + '] ' + str(m.url)));
        if (caption) f.appendChild(linkify(caption, 'txt'));
        break;
      case 'attachment':
      case 'youtube':
      case 'vimeo': {
        const name = str(m.title) || str(m.caption);
        const label = (type === 'attachment' ? '' : '\u25b6 ') + (name || (type === 'youtube' ? 'YouTube video' : type === 'vimeo' ? 'Vimeo video' : str(m.url)));
        f.appendChild(url ? link(url, label) : el('div', 'txt', label));
        if (str(m.caption) && str(m.title)) f.appendChild(linkify(str(m.caption), 'txt'));
        break;
      }
      case 'location': {
        const lat = Number(m.latitude);
        const lon = Number(m.longitude);
        const has = m.latitude != null && m.longitude != null && isFinite(lat) && isFinite(lon);
        if (str(m.address)) f.appendChild(el('div', 'txt', str(m.address)));
        const href = has
          ? 'https://www.openstreetmap.org/?mlat=' + lat + '&mlon=' + lon + '#map=16/' + lat + '/' + lon
          : str(m.address) ? 'https://www.openstreetmap.org/search?query=' + encodeURIComponent(str(m.address)) : null;
        if (href) f.appendChild(link(href, has ? 'Open map (' + lat + ', ' + lon + ')' : 'Open map'));
        break;
      }
      case 'contact': {
        const lines = Object.keys(m).filter((k) => k !== 'type' && str(m[k])).map((k) => k + ': ' + str(m[k]));
        f.appendChild(el('div', 'txt', lines.join('\n') || '[contact]'));
        break;
      }
      case 'card':
        f.appendChild(this.cards([m], 'cards'));
        break;
      case 'carousel':
      case 'list':
        f.appendChild(this.cards(Array.isArray(m.items) ? m.items : [], type === 'list' ? 'cards list' : 'cards'));
        break;
      default:
        f.appendChild(el('div', 'txt', '[' + (type || 'message') + ' not supported]'));
    }
    return f;
  }

  cards(items, cls) {
    const box = el('div', cls);
    items.forEach((it) => {
      if (!it || typeof it !== 'object') return;
      const c = box.appendChild(el('div', 'card'));
      const img = safeUrl(it.mediaUrl);
      if (img) c.appendChild(image(img, str(it.title)));
      if (str(it.title) || str(it.description)) {
        const b = c.appendChild(el('div', 'cb'));
        if (str(it.title)) b.appendChild(el('div', 'ct', it.title));
        if (str(it.description)) b.appendChild(linkify(str(it.description), 'cd'));
      }
      if (Array.isArray(it.actions) && it.actions.length) c.appendChild(this.actions(it.actions));
    });
    return box;
  }

  actions(list) {
    const box = el('div', 'acts');
    list.forEach((a) => {
      if (!a || typeof a !== 'object') return;
      const title = str(a.title);
      if (a.type === 'link') {
        const href = safeUrl(a.url);
        box.appendChild(href ? link(href, title || href, 'btn') : el('div', 'txt', title));
        return;
      }
      if (a.type !== 'reply' && a.type !== 'postback') return;
      const b = box.appendChild(el('button', 'btn', title));
      b.type = 'button';
      b.addEventListener('click', () => {
        if (a.type === 'reply') this.send(title);
        else {
          b.setAttribute('aria-pressed', 'true');
          this.event({ type: 'payload', payloadType: 'postback', payload: a.payload === undefined ? '' : a.payload });
        }
      });
    });
    return box;
  }

  showTyping(on) {
    clearTimeout(this.typingTimer);
    const stick = this.nearBottom();
    this.typing.classList.toggle('on', !!on);
    if (on) this.typingTimer = setTimeout(() => this.typing.classList.remove('on'), 10000);
    if (stick) this.scroll(true);
  }

  // ---- public API
  open() {
    if (this.dead) return this;
    if (!this.isOpen) {
      this.isOpen = true;
      this.w.classList.add('open');
      this.launcher.setAttribute('aria-label', 'Close chat');
      this.unread = 0;
      this.badge.textContent = '';
      this.readMark = Math.max(this.readMark, this.cursor);
      this.emit('open', {});
      setTimeout(() => this.input && this.input.focus(), 0);
    }
    if (this.state === 'unavailable' || this.state === 'failed' || !this.state) this.start();
    this.scroll(true);
    return this;
  }

  close() {
    if (this.dead || !this.isOpen) return this;
    this.isOpen = false;
    this.w.classList.remove('open');
    this.launcher.setAttribute('aria-label', 'Open chat');
    this.typingOff();
    this.emit('close', {});
    return this;
  }

  /** Sends a customer text; false when it is empty. Queued while the socket is down. */
  send(text) {
    if (this.dead || this.state === 'unavailable') return false;
    const t = str(text).replace(/^\s+|\s+$/g, '');
    if (!t) return false;
    const message = { type: 'text', text: t };
    const node = this.add(this.row(true, message), true);
    node.classList.add('pending');
    node.message = message;
    this.typingOff();
    this.post({ type: 'message', message }, node);
    if (!this.state || this.state === 'failed') this.start();
    return true;
  }

  destroy() {
    if (this.dead) return;
    this.emit('destroy', {});
    this.dead = true;
    this.state = 'destroyed';
    clearTimeout(this.retryTimer);
    clearTimeout(this.typingTimer);
    W.removeEventListener('online', this.onOnline);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try { ws.close(1000); } catch (e) { }
    }
    this.host.remove();
    instances.delete(this.id);
    this.handlers = {};
  }

  on(name, fn) {
    (this.handlers[name] = this.handlers[name] || []).push(fn);
    return this;
  }

  off(name, fn) {
    this.handlers[name] = (this.handlers[name] || []).filter((h) => h !== fn);
    return this;
  }

  emit(name, data) {
    const detail = Object.assign({ integrationId: this.id }, data);
    (this.handlers[name] || []).slice().forEach((h) => {
      try { h(detail); } catch (e) { setTimeout(() => { throw e; }); }
    });
    try { D.dispatchEvent(new CustomEvent('switchboard:webchat:' + name, { detail })); } catch (e) { }
  }

  // ---- composing
  submit() {
    if (this.state === 'unavailable') return;
    if (this.send(this.input.value)) {
      this.input.value = '';
      this.grow();
    }
    this.input.focus();
  }

  typingOn() {
    if (!this.input.value || this.state !== 'online') return;
    const now = Date.now();
    if (now - this.lastTyping < 3000) return;
    this.lastTyping = now;
    this.typingSent = true;
    this.event({ type: 'typing_on' }, true);
  }

  typingOff() {
    if (!this.typingSent) return;
    this.typingSent = false;
    this.lastTyping = 0;
    this.event({ type: 'typing_off' }, true);
  }

  /** Sends an event; `live` ones (typing) are dropped rather than queued. */
  event(ev, live) {
    if (live && this.state !== 'online') return;
    this.post({ type: 'event', event: ev }, null);
  }

  post(activity, node) {
    const ref = 'w' + ++this.seq;
    this.pending.set(ref, { node, sent: false });
    this.push({ type: 'activity', ref, activity }, ref);
  }

  push(frame, ref) {
    if (this.ws && this.state === 'online') {
      this.ws.send(JSON.stringify(frame));
      if (ref && this.pending.has(ref)) this.pending.get(ref).sent = true;
    } else this.outbox.push(frame);
  }

  fail(ref, why) {
    const p = this.pending.get(ref);
    if (!p) return;
    this.pending.delete(ref);
    const n = p.node;
    if (!n) return;
    n.classList.replace('pending', 'failed');
    const t = n.querySelector('.time');
    t.textContent = (why || 'Not sent') + ' \u00b7 tap to retry';
    t.setAttribute('role', 'button');
    t.tabIndex = 0;
    t.addEventListener('click', () => {
      n.classList.replace('failed', 'pending');
      t.textContent = time();
      t.removeAttribute('role');
      this.post({ type: 'message', message: n.message }, n);
    }, { once: true });
  }

  // ---- connection
  async start() {
    if (this.dead || this.starting || this.ws) return;
    this.starting = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.state = 'connecting';
    this.setStatus('Connecting\u2026');
    try {
      if (!this.session) await this.createSession();
      if (!this.dead) this.connect();
    } catch (e) {
      this.sessionFailed(e);
    } finally {
      this.starting = false;
    }
  }

  async createSession() {
    const body = this.clientId ? { clientId: this.clientId } : {};
    let r;
    let j = null;
    try {
      r = await fetch(this.base + '/webchat/v1/' + encodeURIComponent(this.id) + '/sessions', {
        method: 'POST',
        mode: 'cors',
        credentials: 'omit',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      j = await r.json().catch(() => null);
    } catch (e) {
      throw { status: 0, errors: [{ code: 0, description: 'The chat server cannot be reached.' }] };
    }
    if (!r.ok || !j || !j.sessionToken) {
      throw {
        status: r.status,
        errors: (j && j.errors) || [],
        retryAfter: Number(r.headers.get('Retry-After')) || 0,
      };
    }
    if (j.clientId) {
      this.clientId = j.clientId;
      store.set(this.key + 'clientId', j.clientId);
    }
    if (!this.fixedTitle && str(j.title)) this.titleEl.textContent = j.title;
    const was = this.conversationId;
    this.session = j;
    this.conversationId = j.conversationId;
    if (j.isNew || (was && was !== j.conversationId)) {
      // A new conversation: its activities start after nothing.
      this.cursor = 0;
      this.readMark = 0;
      store.set(this.key + 'leid', 0);
      if (was && was !== j.conversationId) {
        this.note('A new conversation has started.');
        this.emit('conversation', { conversationId: j.conversationId });
      }
    }
    this.emit('ready', { conversationId: j.conversationId, isNew: !!j.isNew });
  }

  sessionFailed(e) {
    const code = e && e.errors && e.errors[0] && e.errors[0].code;
    this.emit('error', { status: e.status || 0, errors: (e && e.errors) || [] });
    if (code === 6502) return this.unavailable();
    if (e.status === 0 || e.status === 429 || e.status >= 500) return this.retry(e.retryAfter);
    // Refused for good (unknown integration, origin not allowed, bad request).
    this.state = 'failed';
    this.setStatus('Unavailable');
    this.note('The chat cannot start here' + (e.status ? ' (' + e.status + ').' : '.'));
    this.failAll('Not sent');
  }

  unavailable() {
    if (!this.closedNoted) {
      this.closedNoted = true;
      this.note('This chat is closed right now. Please come back later.');
      this.emit('unavailable', {});
    }
    this.state = 'unavailable';
    this.session = null;
    this.setStatus('Closed');
    this.w.classList.add('closed');
    this.input.disabled = true;
    this.sendButton.disabled = true;
    this.showTyping(false);
    this.failAll('Not sent');
  }

  failAll(why) {
    Array.from(this.pending.keys()).forEach((ref) => this.fail(ref, why));
    this.outbox = [];
  }

  retry(after) {
    if (this.dead) return;
    this.state = 'offline';
    this.setStatus('Reconnecting\u2026');
    const wait = Math.max(this.delay, (after || 0) * 1000);
    this.delay = Math.min(this.delay * 2, 30000);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => { this.retryTimer = null; this.start(); }, wait);
  }

  connect() {
    const s = this.session;
    const url = s.websocketUrl + (s.websocketUrl.indexOf('?') >= 0 ? '&' : '?') + 'sessionToken=' + encodeURIComponent(s.sessionToken);
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      this.session = null;
      return this.retry();
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      opened = true;
      this.delay = 1000;
      this.state = 'online';
      this.closedNoted = false;
      this.w.classList.remove('closed');
      this.input.disabled = false;
      this.sendButton.disabled = false;
      this.setStatus('Online');
      ws.send(JSON.stringify({ type: 'resume', leid: this.cursor }));
      const queued = this.outbox;
      this.outbox = [];
      queued.forEach((f) => this.push(f, f.ref));
      this.emit('connected', {});
    };
    ws.onmessage = (e) => this.frame(e.data);
    ws.onerror = () => {};
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.dropped(e.code, opened);
    };
  }

  dropped(code, opened) {
    if (this.dead) return;
    this.state = 'offline';
    this.showTyping(false);
    this.typingSent = false;
    // Sent but not acknowledged: unknown fate; a replayed echo will confirm it.
    this.pending.forEach((p, ref) => { if (p.sent) this.fail(ref); });
    const waiting = this.deferred;
    this.deferred = [];
    waiting.forEach((a) => this.echo(a));
    this.emit('disconnected', { code });
    if (code === 4403) return this.unavailable();
    if (code === 4410) {
      // The conversation was closed: a new session opens a new one.
      this.session = null;
      this.delay = 1000;
      return this.start();
    }
    if (code === 4401) {
      // The session expired: renew it, then resume.
      this.session = null;
      return this.start();
    }
    // Refused at the upgrade (expired, closed conversation, paused): ask for a session again.
    if (!opened) this.session = null;
    this.retry();
  }

  // ---- frames
  frame(data) {
    let f;
    try { f = JSON.parse(data); } catch (e) { return; }
    if (!f || typeof f !== 'object') return;
    if (f.type === 'activity') this.activity(f.payload && f.payload.activity);
    else if (f.type === 'ack') this.ack(f);
    else if (f.type === 'error') this.frameError(f);
  }

  ack(f) {
    const p = this.pending.get(f.ref);
    this.pending.delete(f.ref);
    if (p && p.node) {
      const n = p.node;
      n.classList.remove('pending', 'failed');
      if (!n.eventId) {
        n.eventId = f.eventId;
        this.byEvent.set(f.eventId, n);
      }
    }
    this.emit('sent', { ref: f.ref, eventId: f.eventId });
    const waiting = this.deferred;
    this.deferred = [];
    waiting.forEach((a) => this.echo(a));
  }

  frameError(f) {
    const why = f.status === 429 ? 'Too fast' : 'Not sent';
    this.fail(f.ref, why);
    this.emit('error', { status: f.status, errors: f.errors || [] });
  }

  activity(a) {
    if (!a || typeof a !== 'object') return;
    const id = a.eventId;
    if (typeof id === 'number' && id > this.cursor) {
      this.cursor = id;
      if (id > (Number(store.get(this.key + 'leid')) || 0)) store.set(this.key + 'leid', id);
    }
    const mine = isCustomer(a);
    if (a.type === 'event') {
      const t = a.event && a.event.type;
      if (!mine && t === 'typing_on') this.showTyping(true);
      else if (!mine && t === 'typing_off') this.showTyping(false);
      return;
    }
    if (a.type !== 'message' || !a.message) return;
    if (mine) return this.echo(a);
    if (this.seen.has(id)) return;
    this.seen.add(id);
    this.showTyping(false);
    this.add(this.row(false, a.message, id));
    if (!this.isOpen && id > this.readMark) {
      this.unread += 1;
      this.badge.textContent = String(this.unread);
    }
    this.emit('message', { activity: a });
  }

  /** A customer message: replaces the local copy it confirms, else is shown as new. */
  echo(a) {
    const id = a.eventId;
    let n = this.byEvent.get(id);
    if (!n) {
      // Its ack may not have come yet: a local copy with the same content, else wait for acks.
      const same = JSON.stringify(a.message);
      n = Array.from(this.log.querySelectorAll('.row.me')).find((r) => !r.eventId && r.message && JSON.stringify(r.message) === same);
      if (!n && Array.from(this.pending.values()).some((p) => p.node && p.sent)) {
        this.deferred.push(a);
        return;
      }
    }
    if (n) {
      for (const [ref, p] of this.pending) if (p.node === n) this.pending.delete(ref);
      n.eventId = id;
      this.byEvent.set(id, n);
      n.message = a.message;
      n.classList.remove('pending', 'failed');
      this.fill(n, a.message, id);
      this.seen.add(id);
      return;
    }
    if (this.seen.has(id)) return;
    this.seen.add(id);
    const r = this.add(this.row(true, a.message, id));
    r.eventId = id;
    r.message = a.message;
    this.byEvent.set(id, r);
    this.emit('message', { activity: a });
  }
}

function init(o) {
  if (!o || !o.integrationId) throw new Error('Switchboard.WebChat.init: integrationId is required');
  const id = String(o.integrationId);
  if (instances.has(id)) {
    const c = instances.get(id);
    if (o.open) c.open();
    return c;
  }
  const c = new Chat(o);
  instances.set(id, c);
  return c;
}

NS.WebChat = { version: '1', init, get: (id) => instances.get(String(id)) || null };

if (script && script.dataset && script.dataset.integrationId) {
  const ds = script.dataset;
  const go = () => init({ integrationId: ds.integrationId, open: ds.open === 'true' || ds.open === '', title: ds.title, color: ds.color });
  if (D.body) go();
  else D.addEventListener('DOMContentLoaded', go);
}
})();
