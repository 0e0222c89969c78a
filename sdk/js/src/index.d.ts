// Types of gatewayd-client (src/index.js).

export type StateName = 'connecting' | 'ready' | 'identified' | 'reconnecting' | 'resuming' | 'closed';

export declare const State: {
  readonly CONNECTING: 'connecting';
  readonly READY: 'ready';
  readonly IDENTIFIED: 'identified';
  readonly RECONNECTING: 'reconnecting';
  readonly RESUMING: 'resuming';
  readonly CLOSED: 'closed';
};

/** A WebSocket constructor: the browser's, Node's global one, or the ws package's. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** Timers the client runs on; tests pass a fake clock. */
export interface Clock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
  now(): number;
}

export interface ConnectOptions {
  /** ws:// or wss:// address of gatewayd (or of the load balancer before it). */
  url: string;
  /** A JWT; or getToken. */
  token?: string;
  /** Called before every connection and on token_expiring; may be async. */
  getToken?: () => string | Promise<string>;
  /** Defaults to the token's `sub`. */
  userId?: string;
  /** Guilds joined at identify. */
  guildIds?: string[];
  /** Defaults to globalThis.WebSocket (browsers, Node >= 22). */
  WebSocket?: WebSocketConstructor;
  /** First reconnect delay, ms (500). */
  minDelay?: number;
  /** Cap of the exponential backoff, ms (30000). */
  maxDelay?: number;
  /** Least delay after a 4008 (rate limited), ms (10000). */
  rateLimitDelay?: number;
  /** Time for the server's `ready` after a connect, ms (10000). */
  connectTimeout?: number;
  /** Default timeout of request() and sync(), ms (10000). */
  requestTimeout?: number;
  /** Messages kept while not identified (100); past it calls fail with `buffer_full`. */
  maxBuffer?: number;
  /** Resume a dropped session (true). */
  resume?: boolean;
  clock?: Clock;
  random?: () => number;
}

/** A server dispatch as handlers receive it. */
export interface Dispatch<D = any> {
  event: string;
  seq: number;
  guildId?: string;
  data: D;
  nonce?: string;
}

/** A server message without seq (guild_subscribed from a backend, ...). */
export interface PlainEvent<D = any> {
  event: string;
  data: D;
}

export interface StateChange {
  state: StateName;
  previous: StateName;
  /** The close code that caused a reconnect or the end. */
  code?: number | null;
}

export interface ClosedEvent {
  code: number | null;
  reason: string;
}

export declare class GatewayError extends Error {
  constructor(code: string, message: string);
  /** gateway error code, or `timeout`, `closed`, `buffer_full`, `close_<code>`. */
  code: string;
}

export declare class GatewayClient {
  constructor(options: ConnectOptions);
  readonly state: StateName;
  readonly sessionId: string | null;
  readonly seq: number;
  readonly userId: string | null;
  readonly guilds: Set<string>;
  readonly heartbeatInterval: number | null;
  open(): this;
  on(name: 'state', fn: (s: StateChange) => void): this;
  on(name: 'error', fn: (e: GatewayError) => void): this;
  on(name: 'closed', fn: (c: ClosedEvent) => void): this;
  on<D = any>(name: string, fn: (d: Dispatch<D>) => void): this;
  off(name: string, fn: (arg: any) => void): this;
  once(name: 'state', fn: (s: StateChange) => void): this;
  once(name: 'error', fn: (e: GatewayError) => void): this;
  once(name: 'closed', fn: (c: ClosedEvent) => void): this;
  once<D = any>(name: string, fn: (d: Dispatch<D>) => void): this;
  subscribe(guildId: string): Promise<string>;
  unsubscribe(guildId: string): Promise<string>;
  request<D = any>(event: string, data?: object, options?: { timeout?: number }): Promise<Dispatch<D>>;
  sync<D = any>(scope?: string, options?: { timeout?: number }): Promise<Dispatch<D>>;
  send(event: string, data?: object): void;
  backoffDelay(attempt?: number): number;
  close(): void;
}

export declare function connect(options: ConnectOptions): GatewayClient;
