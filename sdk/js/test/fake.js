// A scripted fake of the gateway for the unit tests: a WebSocket class the
// client is given (every socket it opens is kept, and the test plays the
// server's side of it), and a clock whose time moves only when the test
// says so.

export class FakeClock {
  constructor() {
    this.t = 0;
    this.timers = new Map(); // id -> {at, fn}
    this.next = 1;
  }

  setTimeout = (fn, ms) => {
    const id = this.next++;
    this.timers.set(id, { at: this.t + Math.max(0, ms || 0), fn });
    return id;
  };

  clearTimeout = (id) => {
    this.timers.delete(id);
  };

  now = () => this.t;

  /** Moves time forward by ms, running each timer that falls due, in order. */
  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let due = null;
      for (const [id, tm] of this.timers) if (tm.at <= end && (!due || tm.at < due[1].at)) due = [id, tm];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
      await settle();
    }
    this.t = end;
    await settle();
  }

  /** Delays of the timers now armed, from now. */
  pending() {
    return [...this.timers.values()].map((tm) => tm.at - this.t).sort((a, b) => a - b);
  }
}

/** Lets promise callbacks and the client's async steps run. */
export function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Returns a fake WebSocket class; its sockets are in .sockets, in order. */
export function fakeWebSocket() {
  class FakeSocket {
    static sockets = [];

    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closedWith = null;
      FakeSocket.sockets.push(this);
    }

    // -- the client's side
    send(text) {
      if (this.readyState !== 1) throw new Error('send on a socket that is not open');
      this.sent.push(JSON.parse(text));
    }

    close(code, reason) {
      if (this.readyState === 3) return;
      this.closedWith = { code, reason };
      this.readyState = 3;
      queueMicrotask(() => this.onclose && this.onclose({ code: 1005, reason: '' }));
    }

    // -- the server's side, played by the test
    open() {
      this.readyState = 1;
      if (this.onopen) this.onopen({});
    }

    push(event, data = {}, extra = {}) {
      this.onmessage({ data: JSON.stringify({ event, data, ...extra }) });
    }

    ready(sessionId = 'sess-1', heartbeatInterval = 30000) {
      if (this.readyState === 0) this.open();
      this.push('ready', { sessionId, heartbeatInterval });
    }

    /** The server closes (or the network drops, code 1006). */
    drop(code = 1006, reason = '') {
      this.readyState = 3;
      this.onclose({ code, reason });
    }

    /** Messages the client sent, by event name. */
    sentOf(event) {
      return this.sent.filter((m) => m.event === event);
    }

    last() {
      return this.sent[this.sent.length - 1];
    }
  }
  return FakeSocket;
}

/** An unsigned JWT whose payload is claims (the client only reads `sub`). */
export function fakeToken(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}.sig`;
}
