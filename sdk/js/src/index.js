// gatewayd-client: the client side of gatewayd's WebSocket protocol
// (README.md of the gatewayd repository, "Client protocol"), for browsers
// and Node >= 20. No dependencies: it uses the WebSocket constructor it is
// given, or the global one.
//
// One GatewayClient owns at most one socket at a time. Everything it does
// is driven by three inputs: socket events, timers, and the caller's calls;
// the timers and the randomness come from options, so that tests run it on
// a fake clock.

export const State = Object.freeze({
  CONNECTING: 'connecting',
  READY: 'ready',
  IDENTIFIED: 'identified',
  RECONNECTING: 'reconnecting',
  RESUMING: 'resuming',
  CLOSED: 'closed',
});

/** Names the client emits itself; every other name is a dispatch's. */
const OWN_EVENTS = new Set(['state', 'error', 'closed']);

/** Errors the gateway can answer a nonce-less request with. */
const REQUEST_ERRORS = new Set(['forbidden', 'limit_exceeded', 'invalid_request', 'invalid_token']);

/** What a close code makes the client do (README.md, "Close codes"). */
const CLOSE_POLICY = {
  1000: 'backoff',
  4001: 'stop', // malformed envelope: a bug on this side, retrying repeats it
  4002: 'stop',
  4003: 'stop',
  4004: 'auth', // ask getToken() once more, then stop
  4005: 'stop',
  4007: 'fresh', // the session's seq is wrong here: identify afresh
  4008: 'slow', // rate limited: back off at least rateLimitDelay
  4010: 'backoff',
  4011: 'now', // draining: reconnect at once, resume elsewhere
  4012: 'stop', // another connection resumed this session
  4013: 'expired', // token expired: a new token, a new session
  1003: 'stop',
  1007: 'stop',
};

const DEFAULTS = {
  guildIds: [],
  minDelay: 500,
  maxDelay: 30000,
  rateLimitDelay: 10000,
  connectTimeout: 10000,
  requestTimeout: 10000,
  maxBuffer: 100,
  resume: true,
};

/** An error the gateway answered, or one of the client's own. */
export class GatewayError extends Error {
  /**
   * @param {string} code gateway error code (`forbidden`, `unavailable`...)
   *   or the client's (`timeout`, `closed`, `buffer_full`, `close_<code>`)
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = 'GatewayError';
    this.code = code;
  }
}

/** The `sub` claim of a JWT, without verifying it (the server does). */
function tokenSubject(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4))).sub;
  } catch {
    return undefined;
  }
}

function defaultClock() {
  return {
    setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
    clearTimeout: (id) => globalThis.clearTimeout(id),
    now: () => Date.now(),
  };
}

/** Calls a handler; one that throws is reported and stops nothing here. */
function safeCall(fn, arg) {
  try {
    fn(arg);
  } catch (e) {
    queueMicrotask(() => {
      throw e;
    });
  }
}

export class GatewayClient {
  /** @param {import('./index.js').ConnectOptions} options */
  constructor(options) {
    if (!options || typeof options.url !== 'string') throw new TypeError('connect: url is required');
    if (options.token == null && typeof options.getToken !== 'function')
      throw new TypeError('connect: token or getToken is required');
    this.opts = { ...DEFAULTS, ...options };
    this.WS = options.WebSocket || globalThis.WebSocket;
    if (typeof this.WS !== 'function')
      throw new TypeError('connect: no global WebSocket here; pass one (e.g. the ws package) as options.WebSocket');
    this.clock = options.clock || defaultClock();
    this.random = options.random || Math.random;

    this.state = State.CONNECTING;
    this.sessionId = null; // the session to resume, once identified
    this.seq = 0; // last dispatch seq received in that session
    this.userId = options.userId || null;
    this.guilds = new Set(this.opts.guildIds); // what the app wants joined
    this.token = options.token ?? null;
    this.heartbeatInterval = null;

    this._ws = null;
    this._listeners = new Map();
    this._ops = []; // subscribe/unsubscribe/refresh: answered in order, no nonce
    this._outbox = []; // messages waiting for an identified session
    this._requests = new Map(); // nonce -> {resolve, reject, timer}
    this._nonce = 0;
    this._attempt = 0; // reconnects since the last identified
    this._authRetried = false;
    this._timers = { retry: null, beat: null, connect: null };
    this._ackPending = false;
    this._closing = false;
    this._connectGen = 0;
  }

  // ---- events

  /** Listens to a dispatch name, '*' (every dispatch), 'state', 'error' or 'closed'. */
  on(name, fn) {
    if (!this._listeners.has(name)) this._listeners.set(name, new Set());
    this._listeners.get(name).add(fn);
    return this;
  }

  off(name, fn) {
    const set = this._listeners.get(name);
    if (set) {
      for (const f of set) if (f === fn || f._wrapped === fn) set.delete(f);
    }
    return this;
  }

  once(name, fn) {
    const wrap = (arg) => {
      this.off(name, wrap);
      fn(arg);
    };
    wrap._wrapped = fn;
    return this.on(name, wrap);
  }

  _emit(name, arg) {
    const set = this._listeners.get(name);
    if (set) for (const fn of [...set]) safeCall(fn, arg);
  }

  _setState(state, detail = {}) {
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    this._emit('state', { state, previous, ...detail });
  }

  // ---- the connection

  /** Opens the first connection; connect() calls it. */
  open() {
    this._connect();
    return this;
  }

  async _connect() {
    const gen = ++this._connectGen;
    let token;
    try {
      token = await this._currentToken();
    } catch (e) {
      if (gen === this._connectGen && !this._closing) this._lost(null, `getToken failed: ${e && e.message}`);
      return;
    }
    if (gen !== this._connectGen || this._closing) return;
    this.token = token;
    if (!this.opts.userId) this.userId = tokenSubject(token) || this.userId;
    let ws;
    try {
      ws = new this.WS(this.opts.url);
    } catch (e) {
      this._lost(null, `WebSocket: ${e && e.message}`);
      return;
    }
    this._ws = ws;
    ws.onmessage = (ev) => this._ws === ws && this._onMessage(ev.data);
    ws.onclose = (ev) => this._ws === ws && this._lost(ev.code, ev.reason);
    ws.onerror = () => {}; // a close event follows
    this._timers.connect = this.clock.setTimeout(() => {
      if (this._ws === ws) this._drop(4000, 'no ready in time');
    }, this.opts.connectTimeout);
  }

  async _currentToken() {
    if (typeof this.opts.getToken === 'function') return await this.opts.getToken();
    return this.token;
  }

  /** Sends now if the socket is open; false when it is not. */
  _send(obj) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(obj));
    return true;
  }

  _clearTimer(name) {
    if (this._timers[name] != null) this.clock.clearTimeout(this._timers[name]);
    this._timers[name] = null;
  }

  /** Closes the current socket without waiting for its close event. */
  _drop(code, reason) {
    const ws = this._ws;
    if (ws) {
      try {
        ws.close(code, reason);
      } catch {
        // already closed, or a code this WebSocket refuses
      }
    }
    this._lost(code, reason);
  }

  /** The socket is gone (or given up on): decide what comes next. */
  _lost(code, reason) {
    this._ws = null;
    this._clearTimer('connect');
    this._clearTimer('beat');
    for (const op of this._ops) op.sent = false;
    if (this._closing) return;
    const policy = (code != null && CLOSE_POLICY[code]) || 'backoff';
    this._policies[policy].call(this, code, reason ?? '');
  }

  _retry(delay, code) {
    this._setState(State.RECONNECTING, { code });
    this._clearTimer('retry');
    this._timers.retry = this.clock.setTimeout(() => {
      this._timers.retry = null;
      this._connect();
    }, delay);
  }

  /** Jittered exponential backoff: between half and all of min * 2^attempt, capped. */
  backoffDelay(attempt = this._attempt) {
    const cap = Math.min(this.opts.maxDelay, this.opts.minDelay * 2 ** attempt);
    return Math.round(cap / 2 + (this.random() * cap) / 2);
  }

  _backoff(code, floor = 0) {
    const delay = Math.max(floor, this.backoffDelay());
    this._attempt++;
    this._retry(delay, code);
  }

  _forgetSession() {
    this.sessionId = null;
    this.seq = 0;
  }

  _fail(code, reason) {
    this._emit('error', new GatewayError(`close_${code}`, reason || `closed with ${code}`));
    this._finish(code, reason);
  }

  _finish(code, reason) {
    this._closing = true;
    this._clearTimer('retry');
    this._clearTimer('beat');
    this._clearTimer('connect');
    const err = new GatewayError('closed', 'the client is closed');
    for (const op of this._ops.splice(0)) op.reject(err);
    for (const m of this._outbox.splice(0)) if (m.reject) m.reject(err);
    for (const [nonce, r] of this._requests) {
      this.clock.clearTimeout(r.timer);
      this._requests.delete(nonce);
      r.reject(err);
    }
    this._setState(State.CLOSED, { code });
    this._emit('closed', { code: code ?? null, reason: reason ?? '' });
  }

  // ---- server messages

  _onMessage(raw) {
    let msg;
    try {
      msg = JSON.parse(typeof raw === 'string' ? raw : new TextDecoder().decode(raw));
    } catch {
      return;
    }
    if (!msg || typeof msg.event !== 'string') return;
    if (typeof msg.seq === 'number') {
      this._onDispatch(msg);
      return;
    }
    const fn = this._handlers[msg.event];
    if (fn) fn.call(this, msg.data || {}, msg);
    else this._emitPlain(msg);
  }

  /** A server message without seq that no handler took: by its name. */
  _emitPlain(msg) {
    if (!OWN_EVENTS.has(msg.event)) this._emit(msg.event, { event: msg.event, data: msg.data || {} });
  }

  _onDispatch(msg) {
    if (msg.seq > this.seq) this.seq = msg.seq;
    const d = { event: msg.event, seq: msg.seq, guildId: msg.guildId, data: msg.data, nonce: msg.nonce };
    if (msg.nonce != null && this._requests.has(msg.nonce)) {
      const r = this._requests.get(msg.nonce);
      this._requests.delete(msg.nonce);
      this.clock.clearTimeout(r.timer);
      r.resolve(d);
    }
    if (!OWN_EVENTS.has(msg.event)) this._emit(msg.event, d);
    this._emit('*', d);
  }

  _startHeartbeat(interval) {
    this.heartbeatInterval = interval;
    this._ackPending = false;
    // The first beat comes at a random point of the interval, so that
    // clients that reconnected together do not beat together.
    this._armBeat(Math.round(interval * (0.5 + this.random() / 2)));
  }

  _armBeat(delay) {
    this._clearTimer('beat');
    this._timers.beat = this.clock.setTimeout(() => this._beat(), delay);
  }

  /** Our own heartbeat: an ack still missing from the last one means the
   *  connection is a zombie (open to us, dead on the way), so it is replaced. */
  _beat() {
    this._timers.beat = null;
    if (this._ackPending) {
      this._drop(4000, 'heartbeat_ack missed');
      return;
    }
    this._ackPending = true;
    this._send({ event: 'heartbeat', data: {} });
    this._armBeat(this.heartbeatInterval);
  }

  _identify() {
    this._setState(State.READY);
    this._send({
      event: 'identify',
      data: { userId: this.userId, token: this.token, guildIds: [...this.guilds] },
    });
  }

  /** Identified or resumed: send what waited, arm what was pending. */
  _online(sessionId) {
    this.sessionId = sessionId;
    this._attempt = 0;
    this._authRetried = false;
    this._setState(State.IDENTIFIED);
    for (const op of this._ops) {
      if (!op.sent) {
        op.sent = true;
        this._send(op.msg);
      }
    }
    for (const m of this._outbox.splice(0)) this._send(m.msg);
  }

  /** Settles the oldest sent op that matches. */
  _settleOp(match, settle) {
    const i = this._ops.findIndex((op) => op.sent && match(op));
    if (i < 0) return false;
    const [op] = this._ops.splice(i, 1);
    settle(op);
    return true;
  }

  /** Queues a message for an identified session; bounded by maxBuffer. */
  _queue(entry) {
    const waiting = this._outbox.length + this._ops.filter((op) => !op.sent).length;
    if (waiting >= this.opts.maxBuffer)
      throw new GatewayError('buffer_full', `${waiting} messages already wait for a connection (maxBuffer)`);
    this._outbox.push(entry);
  }

  // ---- the API

  /** Joins a guild; resolves with its id once the gateway confirmed. */
  subscribe(guildId) {
    this.guilds.add(guildId);
    return this._op('subscribe', { event: 'guild_subscribe', data: { guildId } }, guildId);
  }

  /** Leaves a guild; resolves with its id once the gateway confirmed. */
  unsubscribe(guildId) {
    this.guilds.delete(guildId);
    return this._op('unsubscribe', { event: 'guild_unsubscribe', data: { guildId } }, guildId);
  }

  _op(kind, msg, key) {
    return new Promise((resolve, reject) => {
      if (this._closing) return reject(new GatewayError('closed', 'the client is closed'));
      const op = { kind, msg, key, resolve, reject, sent: false };
      if (this.state === State.IDENTIFIED) op.sent = this._send(msg);
      if (!op.sent) {
        const waiting = this._outbox.length + this._ops.filter((o) => !o.sent).length;
        if (waiting >= this.opts.maxBuffer)
          return reject(new GatewayError('buffer_full', 'too many messages wait for a connection (maxBuffer)'));
      }
      this._ops.push(op);
    });
  }

  /**
   * Sends an event up to the backends and resolves with the dispatch that
   * answers it (same nonce); rejects on an `error`, or after the timeout.
   */
  request(event, data = {}, { timeout = this.opts.requestTimeout } = {}) {
    return new Promise((resolve, reject) => {
      if (this._closing) return reject(new GatewayError('closed', 'the client is closed'));
      const nonce = `${(++this._nonce).toString(36)}.${Math.floor(this.random() * 1e9).toString(36)}`;
      const msg = { event, data, nonce };
      const timer = this.clock.setTimeout(() => {
        this._requests.delete(nonce);
        const i = this._outbox.findIndex((m) => m.msg === msg);
        if (i >= 0) this._outbox.splice(i, 1);
        reject(new GatewayError('timeout', `no answer to ${event} within ${timeout} ms`));
      }, timeout);
      const entry = { msg, reject };
      if (!(this.state === State.IDENTIFIED && this._send(msg))) {
        try {
          this._queue(entry);
        } catch (e) {
          this.clock.clearTimeout(timer);
          return reject(e);
        }
      }
      this._requests.set(nonce, { resolve, reject, timer });
    });
  }

  /** Asks for the user's sync-data (sync_request); resolves with the dispatch. */
  sync(scope, options) {
    return this.request('sync_request', scope ? { scope } : {}, options);
  }

  /** Sends an event without waiting for an answer (e.g. typing.start). */
  send(event, data = {}) {
    const msg = { event, data };
    if (this._closing) throw new GatewayError('closed', 'the client is closed');
    if (!(this.state === State.IDENTIFIED && this._send(msg))) this._queue({ msg });
  }

  /** Closes for good (code 1000: the session is not kept for a resume). */
  close() {
    if (this._closing) return;
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      try {
        ws.close(1000, 'client closed');
      } catch {
        // not open yet
      }
    }
    this._finish(1000, 'client closed');
  }
}

/** What each server event does; `this` is the client. */
GatewayClient.prototype._handlers = {
  ready(data) {
    this._clearTimer('connect');
    this._startHeartbeat(data.heartbeatInterval || 30000);
    if (this.opts.resume && this.sessionId) {
      this._setState(State.RESUMING);
      this._send({ event: 'resume', data: { sessionId: this.sessionId, token: this.token, seq: this.seq } });
    } else {
      this._identify();
    }
  },
  identified(data) {
    this.seq = 0;
    this.userId = data.userId || this.userId;
    this._online(data.sessionId);
  },
  resumed(data) {
    // After a drain the session lives on another instance, with a new id.
    this._online(data.sessionId || this.sessionId);
  },
  invalid_session() {
    // A new `ready` follows on the same connection; it identifies.
    this._forgetSession();
  },
  heartbeat() {
    this._send({ event: 'heartbeat_ack', data: {} });
  },
  heartbeat_ack() {
    this._ackPending = false;
  },
  guild_subscribed(data, msg) {
    if (!this._settleOp((op) => op.kind === 'subscribe' && op.key === data.guildId, (op) => op.resolve(op.key))) {
      this.guilds.add(data.guildId); // a backend subscribed this session
      this._emitPlain(msg);
    }
  },
  guild_unsubscribed(data, msg) {
    if (!this._settleOp((op) => op.kind === 'unsubscribe' && op.key === data.guildId, (op) => op.resolve(op.key))) {
      this.guilds.delete(data.guildId); // the gateway took it away (a refreshed token, a backend)
      this._emitPlain(msg);
    }
  },
  token_expiring() {
    if (typeof this.opts.getToken !== 'function') return;
    Promise.resolve()
      .then(() => this.opts.getToken())
      .then((token) => this._op('refresh', { event: 'refresh', data: { token } }, token))
      .then((token) => {
        this.token = token;
      })
      .catch((e) => this._emit('error', e));
  },
  refreshed(data) {
    this._settleOp(
      (op) => op.kind === 'refresh',
      (op) => op.resolve(op.key),
    );
  },
  error(data, msg) {
    const err = new GatewayError(data.code || 'error', data.message || '');
    if (msg.nonce != null && this._requests.has(msg.nonce)) {
      const r = this._requests.get(msg.nonce);
      this._requests.delete(msg.nonce);
      this.clock.clearTimeout(r.timer);
      r.reject(err);
      return;
    }
    if (REQUEST_ERRORS.has(err.code) && this._settleOp(() => true, (op) => op.reject(err))) return;
    this._emit('error', err);
  },
};

/** What each close policy does; `this` is the client. */
GatewayClient.prototype._policies = {
  backoff(code) {
    this._backoff(code);
  },
  now(code) {
    this._attempt = 0;
    this._retry(0, code);
  },
  slow(code) {
    this._backoff(code, this.opts.rateLimitDelay);
  },
  fresh(code) {
    this._forgetSession();
    this._backoff(code);
  },
  auth(code, reason) {
    if (this._authRetried || typeof this.opts.getToken !== 'function') {
      this._fail(code, reason);
      return;
    }
    this._authRetried = true;
    this._forgetSession();
    this._retry(0, code);
  },
  expired(code, reason) {
    this._forgetSession();
    if (typeof this.opts.getToken !== 'function') this._fail(code, reason);
    else this._retry(0, code);
  },
  stop(code, reason) {
    this._fail(code, reason);
  },
};

/**
 * Connects to a gatewayd and keeps the session alive until close().
 * @param {import('./index.js').ConnectOptions} options
 * @returns {GatewayClient}
 */
export function connect(options) {
  return new GatewayClient(options).open();
}
