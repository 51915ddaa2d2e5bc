// The client: one device of one account on one hallpass issuer.

import { b64urlEncode } from "./b64.js";
import { createProof, htuOf } from "./dpop.js";
import { ApiError, ClientCodes, HallpassError, NetworkError, ServerCodes, apiErrorFrom, challengeError, validCode } from "./errors.js";
import { checkPublicJwk, thumbprint, type Signer } from "./signer.js";
import { IndexedDBStorage, MemoryStorage, type SessionRecord, type Storage } from "./storage.js";

/** Defaults of the options. */
export const defaults = {
  /** Refresh an access token this long before it expires. */
  expiryMarginMs: 30_000,
  /**
   * How long one refresh is retried with the same refresh token after a
   * lost answer, a 5xx or a 429. It stays below the server's grace window
   * (30 s by default), inside which a repeated refresh token gets the same
   * successor instead of counting as reuse.
   */
  refreshRetryWindowMs: 20_000,
  /** Timeout of one request to the issuer (an attempt of a refresh or signup: at most 2/5 of refreshRetryWindowMs). */
  requestTimeoutMs: 30_000,
} as const;

/** Options of createClient. */
export interface ClientOptions {
  /** The issuer's URL (its public URL): https, or http on a loopback host. */
  server: string;
  /**
   * Where the session (and, unless `signer` is given, the device key) is
   * kept. Default: IndexedDBStorage in browsers, MemoryStorage elsewhere
   * (Node: FileStorage from "@hallpass/client/node" keeps it in a file).
   */
  storage?: Storage;
  /**
   * The device key, when it lives outside the storage (iOS Keychain /
   * Secure Enclave, Android Keystore: docs/mobile.md). Default: a key kept
   * by the storage, made at the first signup, link or recovery.
   */
  signer?: Signer;
  /**
   * Origins of your own services that verify hallpass tokens, to which
   * client.fetch and client.socketAuth may send the access token (the
   * issuer's origin is always allowed). The token is never sent anywhere
   * else. Each is https, or http on a loopback host.
   */
  origins?: string[];
  /** The fetch function; default globalThis.fetch. */
  fetch?: typeof globalThis.fetch;
  /** Default defaults.expiryMarginMs. */
  expiryMarginMs?: number;
  /** Default defaults.refreshRetryWindowMs; keep it below the server's --refresh-grace. */
  refreshRetryWindowMs?: number;
  /** Default defaults.requestTimeoutMs. */
  requestTimeoutMs?: number;
  /** Clock in milliseconds, read on every use; default Date.now. */
  now?: () => number;
  /**
   * Share one refresh across tabs and workers of the origin (Web Locks) and
   * tell them about changes (BroadcastChannel). Default true where the
   * platform has them.
   */
  crossTab?: boolean;
  /** Allow a plain http server or origin on a host other than loopback. SECURITY: tokens and proofs then cross the network in clear; test networks only. */
  allowInsecureHttp?: boolean;
}

/** Who this client is, without a request. Holds no secret. */
export interface SessionState {
  accountId: string;
  deviceId: string;
  username: string;
}

/** The answer of GET /v1/me. */
export interface Me extends SessionState {
  /** Unused recovery codes; 0: a lost device can come back only through a link code from another signed-in device. */
  recoveryCodesLeft: number;
}

/** One device of the account, as GET /v1/me/devices lists it. */
export interface Device {
  id: string;
  name: string;
  created: Date;
  lastUsed: Date;
  /** When the device was signed out; null while active. */
  revoked: Date | null;
  active: boolean;
  /** This client's own device. */
  current: boolean;
}

/** A link code to show on this device (text and QR) and type on the new one. */
export interface LinkCode {
  code: string;
  expiresAt: Date;
}

/** Why the client signed out. */
export type SignedOutReason =
  /** logout() */
  | "logout"
  /** deleteAccount() */
  | "deleted"
  /** revokeDevice() of this device */
  | "revoked"
  /** The server refused the refresh token: logged out, signed out by another device or an operator, reuse detected, expired. */
  | "invalid_grant"
  /** Another tab or worker of this origin signed out, or the storage was emptied. */
  | "storage";

/** Events of the client. */
export interface ClientEvents {
  /** The session ended; state() is null. The device comes back with a link code or a recovery code, never by signing up again (that makes a new account). */
  signedout: { reason: SignedOutReason };
  /** state() changed (signup, link, recovery, sign-out, here or in another tab). */
  statechange: { state: SessionState | null };
}

/** The object socket.io-client's auth callback passes on: io(url, { auth: (cb) => client.socketAuth(url).then(cb) }). */
export interface SocketAuth {
  token: string;
  proof: string;
}

/** Options of socketAuth. */
export interface SocketAuthOptions {
  /** The socket.io path, with its trailing slash; default "/socket.io/" (socket.io's). */
  path?: string;
}

const lockPrefix = "hallpass:";

type Message = { type: "changed"; generation: number };

interface TokenResponse {
  account_id?: string;
  username?: string;
  device_id?: string;
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token: string;
}

function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === "localhost" || h === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** normalizeURL checks a server URL or origin and returns scheme://host[:port][/prefix] without a trailing slash. */
function normalizeURL(s: string, insecure: boolean, what: string): URL {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new HallpassError(ClientCodes.invalidArgument, `hallpass: ${what} is not an absolute URL`);
  }
  if (u.username || u.password || u.search || u.hash || s.includes("?") || s.includes("#")) {
    throw new HallpassError(ClientCodes.invalidArgument, `hallpass: ${what} must have no user info, query or fragment`);
  }
  if (u.protocol === "http:") {
    if (!insecure && !isLoopback(u.hostname)) {
      throw new HallpassError(ClientCodes.invalidArgument, `hallpass: ${what} must be https (plain http only on a loopback host, or with allowInsecureHttp)`);
    }
  } else if (u.protocol !== "https:") {
    throw new HallpassError(ClientCodes.invalidArgument, `hallpass: ${what} must be http or https`);
  }
  return u;
}

function defaultStorage(base: string): Storage {
  if (typeof indexedDB !== "undefined" && typeof globalThis.crypto?.subtle !== "undefined") {
    return new IndexedDBStorage({ namespace: base });
  }
  return new MemoryStorage();
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * createClient returns a client for the issuer at options.server: it
 * restores the session saved in the storage, or starts with none.
 */
export async function createClient(options: ClientOptions): Promise<HallpassClient> {
  const c = new HallpassClient(options);
  await c.init();
  return c;
}

/**
 * HallpassClient is one device's client of one hallpass issuer. Make it with
 * createClient. It signs a fresh DPoP proof for every request, refreshes the
 * access token before it expires (one refresh per device at a time, across
 * tabs), retries a lost refresh with the same refresh token, and saves every
 * new token pair before using it.
 */
export class HallpassClient {
  private readonly base: string; // scheme://host[:port][/prefix], no trailing slash
  private readonly origin: string;
  private readonly origins: Set<string>;
  private readonly storage: Storage;
  private readonly fixedSigner: Signer | null;
  private readonly doFetch: typeof globalThis.fetch;
  private readonly margin: number;
  private readonly retryWindow: number;
  private readonly timeout: number;
  private readonly now: () => number;
  private readonly lockName: string;
  private readonly useLocks: boolean;
  private channel: BroadcastChannel | null = null;

  private rec: SessionRecord | null = null;
  private signer: Signer | null = null;
  private jkt = "";
  private dirty = false; // rec differs from what the storage holds
  // The refresh token this client last saw in the storage (read or
  // written; null: no record). While dirty, a storage that holds another one
  // was written by another tab or process since our save failed.
  private observed: string | null = null;
  private nonces = new Map<string, string>(); // origin -> latest DPoP-Nonce
  private inflight: Promise<SessionRecord> | null = null;
  private localLock: Promise<unknown> = Promise.resolve();
  private busy = false;
  private closed = false;
  private listeners: { [K in keyof ClientEvents]: Set<(e: ClientEvents[K]) => void> } = { signedout: new Set(), statechange: new Set() };

  /** Use createClient. */
  constructor(o: ClientOptions) {
    if (!o || typeof o.server !== "string") throw new HallpassError(ClientCodes.invalidArgument, "hallpass: options.server is required");
    const insecure = o.allowInsecureHttp === true;
    const u = normalizeURL(o.server, insecure, "server URL");
    this.origin = u.origin;
    this.base = u.origin + u.pathname.replace(/\/+$/, "");
    this.origins = new Set([this.origin]);
    for (const s of o.origins ?? []) {
      const ou = normalizeURL(s, insecure, `origin ${JSON.stringify(String(s).slice(0, 100))}`);
      if (ou.pathname !== "/") throw new HallpassError(ClientCodes.invalidArgument, "hallpass: an origin is scheme://host[:port] without a path");
      this.origins.add(ou.origin);
    }
    this.storage = o.storage ?? defaultStorage(this.base);
    this.fixedSigner = o.signer ?? null;
    const f = o.fetch ?? globalThis.fetch;
    if (typeof f !== "function") throw new HallpassError(ClientCodes.invalidArgument, "hallpass: no fetch function");
    this.doFetch = (input, init) => f(input, init);
    this.margin = o.expiryMarginMs ?? defaults.expiryMarginMs;
    this.retryWindow = o.refreshRetryWindowMs ?? defaults.refreshRetryWindowMs;
    this.timeout = o.requestTimeoutMs ?? defaults.requestTimeoutMs;
    this.now = o.now ?? Date.now;
    if (!(this.margin >= 0) || !(this.retryWindow > 0) || !(this.timeout > 0)) {
      throw new HallpassError(ClientCodes.invalidArgument, "hallpass: negative expiry margin, or non-positive retry window or timeout");
    }
    this.lockName = lockPrefix + this.base;
    const crossTab = o.crossTab ?? true;
    const nav = (globalThis as { navigator?: { locks?: LockManager } }).navigator;
    this.useLocks = crossTab && typeof nav?.locks?.request === "function";
    if (crossTab && typeof BroadcastChannel === "function") {
      this.channel = new BroadcastChannel(lockPrefix + this.base);
      (this.channel as unknown as { unref?: () => void }).unref?.(); // Node: do not keep the process alive
      this.channel.onmessage = (ev: MessageEvent) => {
        const m = ev.data as Message;
        if (m && m.type === "changed") void this.sync();
      };
    }
  }

  /** @internal Loads the saved session. */
  async init(): Promise<void> {
    if (this.fixedSigner) {
      checkPublicJwk(this.fixedSigner.alg, this.fixedSigner.publicJwk);
      this.signer = this.fixedSigner;
      this.jkt = await thumbprint(this.fixedSigner.publicJwk);
    }
    const rec = await this.readStored();
    this.rec = rec;
  }

  /** The issuer URL, normalised. */
  get server(): string {
    return this.base;
  }

  /** Who is signed in on this device, or null; no request. */
  state(): SessionState | null {
    const r = this.rec;
    return r ? { accountId: r.accountId, deviceId: r.deviceId, username: r.username } : null;
  }

  /** Listens to an event; returns the function that stops listening. */
  on<K extends keyof ClientEvents>(type: K, listener: (e: ClientEvents[K]) => void): () => void {
    this.listeners[type].add(listener);
    return () => this.listeners[type].delete(listener);
  }

  private emit<K extends keyof ClientEvents>(type: K, e: ClientEvents[K]): void {
    for (const l of [...this.listeners[type]]) {
      try {
        l(e);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  /** Stops listening to other tabs. Later calls fail with code closed. */
  close(): void {
    this.closed = true;
    this.channel?.close();
    this.channel = null;
  }

  private checkOpen(): void {
    if (this.closed) throw new HallpassError(ClientCodes.closed, "hallpass: client closed");
  }

  // ---- storage ------------------------------------------------------------

  /** The signer for the saved key, loaded (or made, with create) from the storage. */
  private async loadSigner(create: boolean): Promise<Signer | null> {
    if (this.fixedSigner) return this.fixedSigner;
    if (!this.storage.deviceKey) {
      throw new HallpassError(ClientCodes.invalidArgument, "hallpass: this storage keeps no device key; pass a signer to createClient");
    }
    let s: Signer | null;
    try {
      s = await this.storage.deviceKey(create);
    } catch (err) {
      throw new HallpassError(ClientCodes.storageError, "hallpass: reading or making the device key failed", { cause: err });
    }
    if (s) {
      checkPublicJwk(s.alg, s.publicJwk);
      this.jkt = await thumbprint(s.publicJwk);
    }
    this.signer = s;
    return s;
  }

  /** readStored loads the record and the key it is bound to, and checks they belong to this client. */
  private async readStored(): Promise<SessionRecord | null> {
    let rec: SessionRecord | null;
    try {
      rec = await this.storage.load();
    } catch (err) {
      throw new HallpassError(ClientCodes.storageError, "hallpass: loading the state failed", { cause: err });
    }
    this.observed = rec?.refreshToken || null;
    if (!rec || !rec.refreshToken) return null;
    if (rec.server !== this.base) {
      throw new HallpassError(ClientCodes.stateMismatch, "hallpass: the stored session is for another server URL");
    }
    if (!this.fixedSigner && (!this.signer || this.jkt !== rec.jkt)) {
      // A session whose key is gone is of no use: the device starts empty.
      if (!(await this.loadSigner(false))) return null;
    }
    if (!this.signer || this.jkt !== rec.jkt) {
      throw new HallpassError(ClientCodes.stateMismatch, "hallpass: the stored session is bound to another device key");
    }
    return rec;
  }

  /** persist saves rec and makes it the state; on failure it stays the state (the refresh token is never dropped) and is saved again on the next call, unless the storage moved on meanwhile (saveDirty). */
  private async persist(rec: SessionRecord): Promise<void> {
    this.rec = rec;
    try {
      await this.storage.save(rec);
      this.dirty = false;
      this.observed = rec.refreshToken;
    } catch (err) {
      this.dirty = true;
      throw new HallpassError(ClientCodes.storageError, "hallpass: saving the state failed; the tokens are kept in memory and saved on the next call", { cause: err });
    }
    this.post();
  }

  private post(): void {
    try {
      this.channel?.postMessage({ type: "changed", generation: this.rec?.generation ?? 0 } satisfies Message);
    } catch {
      // A closed channel: other tabs re-read the storage before refreshing anyway.
    }
  }

  /** sync adopts what another tab saved. */
  private async sync(): Promise<void> {
    if (this.closed || this.dirty) return;
    let rec: SessionRecord | null;
    try {
      rec = await this.readStored();
    } catch {
      return;
    }
    this.adopt(rec);
  }

  /** adopt makes a stored record the state, unless this client's own is newer (or force). */
  private adopt(rec: SessionRecord | null, force = false): void {
    const had = this.rec;
    if (!force && rec && had && rec.deviceId === had.deviceId && rec.generation < had.generation) return;
    if (rec && had && !rec.accessToken && had.accessToken && rec.deviceId === had.deviceId && rec.jkt === had.jkt) {
      // A storage that keeps no access token: ours is still good (a
      // rotation does not end it) while it is fresh. Dropping it would cost
      // a refresh per call, and one in every other tab after each refresh.
      rec = { ...rec, accessToken: had.accessToken, accessTokenExpiresAt: had.accessTokenExpiresAt };
    }
    this.rec = rec;
    if (had && !rec) {
      this.emit("signedout", { reason: "storage" });
      this.emit("statechange", { state: null });
    } else if (rec && (!had || had.deviceId !== rec.deviceId || had.username !== rec.username)) {
      this.emit("statechange", { state: this.state() });
    }
  }

  /** endSession drops the session and the device key, and tells the app and the other tabs. */
  private async endSession(reason: SignedOutReason): Promise<void> {
    const had = this.rec !== null;
    this.rec = null;
    this.dirty = false;
    let err: unknown = null;
    try {
      await this.storage.save(null);
      this.observed = null;
      if (!this.fixedSigner && this.storage.deleteDeviceKey) await this.storage.deleteDeviceKey();
    } catch (e) {
      err = e;
    }
    if (!this.fixedSigner) {
      this.signer = null;
      this.jkt = "";
    }
    this.post();
    if (had) {
      this.emit("signedout", { reason });
      this.emit("statechange", { state: null });
    }
    if (err) throw new HallpassError(ClientCodes.storageError, "hallpass: clearing the state failed", { cause: err });
  }

  // ---- locks --------------------------------------------------------------

  /** withLock runs fn while holding the device's lock: across tabs with Web Locks, else within this client. Not reentrant. */
  private withLock<T>(fn: () => Promise<T>): Promise<T> {
    if (this.useLocks) {
      const nav = (globalThis as unknown as { navigator: { locks: LockManager } }).navigator;
      return nav.locks.request(this.lockName, { mode: "exclusive" }, fn) as Promise<T>;
    }
    const run = this.localLock.then(fn, fn);
    this.localLock = run.catch(() => undefined);
    return run;
  }

  // ---- requests -----------------------------------------------------------

  private fresh(rec: SessionRecord): boolean {
    return !!rec.accessToken && rec.accessTokenExpiresAt - this.margin > this.now();
  }

  private noteNonce(origin: string, res: Response): void {
    const n = res.headers.get("dpop-nonce");
    if (n && n.length <= 512 && /^[\x21-\x7e]+$/.test(n)) this.nonces.set(origin, n);
  }

  /**
   * send makes one request to the issuer and reads its answer, body
   * included, within timeoutMs. An answer cut or stalled before its end is a
   * NetworkError, like one that never came: for a refresh the server may
   * have rotated the token, and only a retry with the same one gets it back.
   */
  private async send(url: string, init: RequestInit, timeoutMs: number): Promise<{ res: Response; text: string }> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    try {
      const res = await this.doFetch(url, { ...init, signal: ctl.signal, redirect: "error", credentials: "omit", cache: "no-store" });
      return { res, text: await res.text() };
    } catch (err) {
      throw new NetworkError(ctl.signal.aborted ? "hallpass: the server did not answer in time" : "hallpass: the server could not be reached", { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * exchange POSTs to an endpoint that takes a proof of the device key and
   * no access token (signup, link, recover, token), retrying once with the
   * server's nonce when it demands one. It returns the parsed JSON answer.
   */
  private async exchange(signer: Signer, path: string, contentType: string, body: string, timeoutMs = this.timeout): Promise<unknown> {
    const url = this.base + path;
    for (let attempt = 0; ; attempt++) {
      const proof = await createProof(signer, { method: "POST", url, nonce: this.nonces.get(this.origin) }, { iat: Math.floor(this.now() / 1000) });
      const { res, text } = await this.send(url, { method: "POST", headers: { "Content-Type": contentType, DPoP: proof, Accept: "application/json" }, body }, timeoutMs);
      this.noteNonce(this.origin, res);
      if (res.ok) return this.parseJSON(text);
      const err = await apiErrorFrom(res, text);
      if (err.code === ServerCodes.useDPoPNonce && attempt === 0 && res.headers.get("dpop-nonce")) continue;
      throw err;
    }
  }

  private async readJSON(res: Response): Promise<unknown> {
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new HallpassError(ClientCodes.badResponse, "hallpass: unexpected answer from the server", { cause: err });
    }
    return this.parseJSON(text);
  }

  private parseJSON(text: string): unknown {
    try {
      if (text.length > 1 << 20) throw new Error("too large");
      return text ? JSON.parse(text) : null;
    } catch (err) {
      throw new HallpassError(ClientCodes.badResponse, "hallpass: unexpected answer from the server", { cause: err });
    }
  }

  private checkTokens(v: unknown, join: boolean): TokenResponse {
    const t = v as TokenResponse & Record<string, unknown>;
    const ok = t && typeof t === "object" && typeof t.access_token === "string" && t.access_token !== "" &&
      typeof t.refresh_token === "string" && t.refresh_token !== "" && typeof t.token_type === "string" &&
      t.token_type.toLowerCase() === "dpop" && Number.isInteger(t.expires_in) && t.expires_in > 0 && t.expires_in <= 86400 &&
      (!join || (typeof t.account_id === "string" && t.account_id !== "" && typeof t.device_id === "string" && t.device_id !== "" && typeof t.username === "string"));
    if (!ok) throw new HallpassError(ClientCodes.badResponse, "hallpass: the server's token answer is not the documented one");
    return t;
  }

  // ---- refresh ------------------------------------------------------------

  /**
   * session returns a record whose access token is fresh, refreshing first
   * when it is not (or when it is the token the server just refused).
   */
  private async session(refused?: string): Promise<SessionRecord> {
    this.checkOpen();
    const rec = this.rec;
    if (rec && !this.dirty && this.fresh(rec) && rec.accessToken !== refused) return rec;
    return this.refreshShared(refused, false);
  }

  /** refreshShared runs one refresh for every caller in this client; the lock makes it one per device across tabs. */
  private refreshShared(refused: string | undefined, force: boolean): Promise<SessionRecord> {
    // The refresh token this client knows now: if the storage holds another
    // one once the lock is ours, another tab refreshed since we asked.
    const known = this.rec?.refreshToken;
    this.inflight ??= this.withLock(() => this.refreshLocked(refused, force, known)).finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async refreshLocked(refused: string | undefined, force: boolean, known: string | undefined): Promise<SessionRecord> {
    let rec: SessionRecord | null;
    let adopted = false;
    const stale = this.dirty && this.rec ? !(await this.saveDirty()) : false;
    if (this.dirty && this.rec) {
      rec = this.rec;
    } else {
      // Another tab may have refreshed (the broadcast may not have reached
      // this one, asleep or frozen): the storage has the only refresh token
      // that is still good.
      rec = await this.readStored();
      const mine = this.rec;
      if (!rec) {
        if (mine) await this.endSession("storage");
        throw new HallpassError(ClientCodes.noSession, "hallpass: no session: sign up, link or recover first");
      }
      adopted = !mine || rec.refreshToken !== known || mine.refreshToken !== rec.refreshToken;
      this.adopt(rec, stale);
      rec = this.rec!;
    }
    if ((adopted || !force) && this.fresh(rec) && rec.accessToken !== refused) return rec;
    const signer = this.signer;
    if (!signer) throw new HallpassError(ClientCodes.noSession, "hallpass: no device key");
    rec = await this.withRetryId(rec);
    let t: TokenResponse;
    try {
      t = await this.redeem(signer, rec.refreshToken, rec.refreshRetryId!);
    } catch (err) {
      if (err instanceof ApiError && err.code === ServerCodes.invalidGrant) await this.endSession("invalid_grant").catch(() => undefined);
      throw err;
    }
    const next: SessionRecord = {
      ...rec,
      accessToken: t.access_token,
      accessTokenExpiresAt: this.now() + t.expires_in * 1000,
      refreshToken: t.refresh_token,
      generation: rec.generation + 1,
    };
    delete next.refreshRetryId; // it belonged to the spent token
    await this.persist(next);
    return next;
  }

  /**
   * withRetryId returns rec with a retry id for its refresh token: the one
   * stored with it (by this client, another tab, or before a restart), or a
   * new one, saved before the token is presented. A refresh whose answer is
   * lost is then retried with the same token and id by whoever comes next,
   * and the server answers with the same successor even after its grace
   * window. If that save fails the id is used from memory (and saved again
   * by the next call, as tokens whose save failed are): refusing to refresh
   * would be worse, and a retry from this client keeps the id; only a retry
   * after a restart, or from another tab, past the grace window, is lost.
   */
  private async withRetryId(rec: SessionRecord): Promise<SessionRecord> {
    if (validRetryId(rec.refreshRetryId)) return rec;
    const next: SessionRecord = { ...rec, refreshRetryId: newRetryId(), generation: rec.generation + 1 };
    try {
      await this.persist(next);
    } catch (err) {
      if (!(err instanceof HallpassError) || err.code !== ClientCodes.storageError) throw err;
    }
    return next;
  }

  /**
   * saveDirty, under the lock, settles tokens whose save failed. If the
   * storage still holds the refresh token it held then, ours are newer:
   * they are saved (or, still failing, used from memory) and it returns
   * true (this.dirty false once saved). If another tab or process wrote
   * since, it refreshed with that token, so what it saved is newer than
   * ours (the same pair from the grace window, or later ones): ours are
   * never written over it or presented, and it returns false with
   * this.dirty false, for the caller to take the storage's record whatever
   * its generation.
   */
  private async saveDirty(): Promise<boolean> {
    const mine = this.rec!;
    const before = this.observed;
    let stored: SessionRecord | null | undefined;
    try {
      stored = await this.storage.load();
    } catch {
      stored = undefined; // unreadable: go on from memory
    }
    const now = stored === undefined ? before : stored?.refreshToken || null;
    if (now !== before && now !== mine.refreshToken) {
      this.dirty = false;
      return false;
    }
    try {
      await this.storage.save(mine);
      this.dirty = false;
      this.observed = mine.refreshToken;
    } catch {
      // Still failing: go on from memory.
    }
    return true;
  }

  /**
   * redeem POSTs the refresh token with its retry id. A lost answer (network
   * error, timeout), a 5xx or a 429 is retried with the SAME refresh token
   * and id until the retry window ends: the server answers a repeated token
   * with the same successor (within its grace window, or later with the id
   * of the request that spent it), while a new token could only come from
   * the lost answer.
   */
  private async redeem(signer: Signer, refreshToken: string, retryId: string): Promise<TokenResponse> {
    const body = new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, retry_id: retryId }).toString();
    const deadline = this.now() + this.retryWindow;
    let backoff = 100;
    for (let attempt = 1; ; attempt++) {
      let err: HallpassError;
      try {
        return this.checkTokens(await this.exchange(signer, "/v1/token", "application/x-www-form-urlencoded", body, this.attemptTimeout(deadline)), false);
      } catch (e) {
        if (!(e instanceof HallpassError)) throw e;
        err = e;
      }
      let wait = backoff;
      if (err instanceof ApiError) {
        if (err.status < 500 && err.status !== 429) throw err; // a verdict: invalid_grant, invalid_dpop_proof, ...
        wait = Math.max(wait, err.retryAfter * 1000);
      } else if (!(err instanceof NetworkError)) {
        throw err;
      }
      await this.backoff(err, wait, deadline);
      backoff = Math.min(backoff * 2, 2000);
    }
  }

  /**
   * attemptTimeout bounds one attempt of a request retried until deadline
   * (a refresh, a signup) to 2/5 of the retry window (as in the Go client)
   * and to what is left of it, so that an answer that never comes is
   * retried inside the window: waiting out requestTimeoutMs (30 s) would
   * outlast the retry window (20 s), leaving no retry at all, and for a
   * refresh the server's grace window (30 s) too, after which the next
   * refresh with the same token is taken for reuse.
   */
  private attemptTimeout(deadline: number): number {
    return Math.max(1, Math.min(this.perAttempt(), deadline - this.now()));
  }

  private perAttempt(): number {
    return Math.min(this.timeout, Math.floor((this.retryWindow * 2) / 5));
  }

  /**
   * backoff waits before the next attempt of a request retried until
   * deadline, or throws err when that attempt would have less than a
   * quarter of an attempt's time left: checked before the wait and again
   * after it, since a machine that slept or a throttled timer wakes late.
   * An attempt with no time to read its answer may still reach the server
   * and rotate the refresh token, whose successor is then lost.
   */
  private async backoff(err: unknown, wait: number, deadline: number): Promise<void> {
    const least = Math.floor(this.perAttempt() / 4);
    if (this.now() + wait + least > deadline) throw err;
    await sleep(wait);
    if (this.now() + least > deadline) throw err;
  }

  /**
   * refresh gets a new access token now, on the same single-flight path as
   * the automatic refresh: if another tab refreshed meanwhile, its tokens
   * are taken instead of refreshing twice. After invalid_grant the session
   * is gone (state() null, a "signedout" event) and the ApiError thrown.
   */
  async refresh(): Promise<void> {
    this.checkOpen();
    await this.refreshShared(undefined, true);
  }

  // ---- joining an account --------------------------------------------------

  private async join(path: string, body: Record<string, unknown>, retryLost: boolean): Promise<SessionState> {
    this.checkOpen();
    if (this.busy) throw new HallpassError(ClientCodes.busy, "hallpass: a signup, link, recovery, logout or deletion is already running");
    this.busy = true;
    try {
      return await this.withLock(async () => {
        const stored = await this.readStored();
        if (stored) {
          this.adopt(stored);
          throw new HallpassError(ClientCodes.alreadySignedIn, "hallpass: this device is signed in already; log out first");
        }
        const signer = await this.loadSigner(true);
        if (!signer) throw new HallpassError(ClientCodes.storageError, "hallpass: the storage made no device key");
        const text = JSON.stringify(body);
        const deadline = this.now() + this.retryWindow;
        let backoff = 200;
        let t: TokenResponse;
        for (;;) {
          try {
            const timeout = retryLost ? this.attemptTimeout(deadline) : this.timeout;
            t = this.checkTokens(await this.exchange(signer, path, "application/json", text, timeout), true);
            break;
          } catch (err) {
            // A signup, link or recovery whose answer was lost is safe to
            // repeat with the same key (and code): the server answers with
            // the account and device it created.
            const lost = err instanceof NetworkError || (err instanceof ApiError && (err.status === 502 || err.status === 503 || err.status === 504));
            const wait = Math.max(backoff, err instanceof ApiError ? err.retryAfter * 1000 : 0);
            if (!retryLost || !lost) throw err;
            await this.backoff(err, wait, deadline);
            backoff = Math.min(backoff * 2, 2000);
          }
        }
        const rec: SessionRecord = {
          version: 1,
          server: this.base,
          jkt: this.jkt,
          accountId: t.account_id!,
          deviceId: t.device_id!,
          username: t.username!,
          accessToken: t.access_token,
          accessTokenExpiresAt: this.now() + t.expires_in * 1000,
          refreshToken: t.refresh_token,
          generation: 1,
        };
        try {
          await this.persist(rec);
        } finally {
          this.emit("statechange", { state: this.state() });
        }
        return this.state()!;
      });
    } finally {
      this.busy = false;
    }
  }

  /**
   * signup creates an account named username with this device. deviceName
   * labels the device in device lists (optional). Errors: username_invalid
   * (see ApiError.reason), username_taken, rate_limited.
   */
  signup(args: { username: string; deviceName?: string }): Promise<SessionState> {
    return this.join("/v1/accounts", { username: String(args.username), ...(args.deviceName ? { device_name: String(args.deviceName) } : {}) }, true);
  }

  /**
   * link joins this device to the account of a link code made by
   * createLinkCode on a signed-in device. A wrong, expired or used code is
   * invalid_link_code. A lost answer is retried within the retry window
   * with the same code and key: the server answers a retry by the key that
   * redeemed the code with the device it created.
   */
  link(args: { code: string; deviceName?: string }): Promise<SessionState> {
    return this.join("/v1/link", { link_code: String(args.code), ...(args.deviceName ? { device_name: String(args.deviceName) } : {}) }, true);
  }

  /**
   * recover brings the account back on this device with one of its
   * recovery codes (used up). signOutOtherDevices (default true) signs
   * every other device out: what a lost or stolen phone calls for. A wrong
   * or used code and an unknown username are both invalid_recovery_code.
   * A lost answer is retried within the retry window with the same code
   * and key: the server answers a retry by the key of the device the code
   * created (never refreshed, within 5 minutes) with that device.
   */
  recover(args: { username: string; code: string; deviceName?: string; signOutOtherDevices?: boolean }): Promise<SessionState> {
    return this.join("/v1/recover", {
      username: String(args.username),
      recovery_code: String(args.code),
      ...(args.deviceName ? { device_name: String(args.deviceName) } : {}),
      sign_out_other_devices: args.signOutOtherDevices ?? true,
    }, true);
  }

  // ---- authenticated calls --------------------------------------------------

  /**
   * fetch is like the platform's fetch for the issuer and the configured
   * origins: it adds "Authorization: DPoP <access token>" and a fresh proof
   * for the exact method and URL (with ath), refreshes first when the token
   * is about to expire, refreshes and retries once on token_expired (also
   * invalid_token and token_revoked), and retries once on use_dpop_nonce. A
   * URL of any other origin is refused (code other_origin) without sending
   * anything. Redirects are not followed unless init.redirect says so.
   * After invalid_grant the session is gone and the ApiError is thrown.
   */
  async fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    this.checkOpen();
    const original = new Request(input, init);
    const url = new URL(original.url);
    if (!this.origins.has(url.origin)) {
      throw new HallpassError(ClientCodes.otherOrigin, "hallpass: the request is not for the server or a configured origin; the token is not sent there");
    }
    const redirect = init?.redirect ?? "error";
    let refused: string | undefined;
    let nonceRetried = false;
    let refreshed = false;
    for (;;) {
      const rec = await this.session(refused);
      const signer = this.signer!;
      const proof = await createProof(signer, { method: original.method, url: original.url, accessToken: rec.accessToken!, nonce: this.nonces.get(url.origin) }, { iat: Math.floor(this.now() / 1000) });
      const headers = new Headers(original.headers);
      headers.set("Authorization", "DPoP " + rec.accessToken);
      headers.set("DPoP", proof);
      const req = new Request(original.clone(), { headers, redirect });
      let res: Response;
      try {
        res = await this.doFetch(req);
      } catch (err) {
        throw new NetworkError("hallpass: the request failed", { cause: err });
      }
      this.noteNonce(url.origin, res);
      if (res.status !== 400 && res.status !== 401) return res;
      const code = await this.answerCode(res);
      if (code === ServerCodes.useDPoPNonce && !nonceRetried && res.headers.get("dpop-nonce")) {
        nonceRetried = true;
        await res.body?.cancel().catch(() => undefined);
        continue;
      }
      if (res.status === 401 && !refreshed && (code === ServerCodes.tokenExpired || code === ServerCodes.invalidToken || code === ServerCodes.tokenRevoked)) {
        refreshed = true;
        refused = rec.accessToken!;
        await res.body?.cancel().catch(() => undefined);
        continue;
      }
      return res;
    }
  }

  /** answerCode reads the code of a 400 or 401 answer without consuming it. */
  private async answerCode(res: Response): Promise<string> {
    const c = challengeError(res.headers.get("www-authenticate"));
    if (c) return c;
    const ct = (res.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (ct !== "application/problem+json" && ct !== "application/json") return "";
    try {
      const p = (await res.clone().json()) as { code?: unknown; error?: unknown };
      return validCode(p?.code) ? p.code : validCode(p?.error) ? p.error : "";
    } catch {
      return "";
    }
  }

  /** call is fetch for the issuer's JSON API: an ApiError for an error answer. */
  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const init: RequestInit = { method, headers: { Accept: "application/json" }, credentials: "omit", cache: "no-store" };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)["Content-Type"] = "application/json";
    }
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), this.timeout);
    init.signal = ctl.signal;
    let res: Response;
    try {
      res = await this.fetch(this.base + path, init);
    } finally {
      clearTimeout(timer);
    }
    if (!res.ok) throw await apiErrorFrom(res);
    if (res.status === 204) return null;
    return this.readJSON(res);
  }

  /** me asks the server who this client is. */
  async me(): Promise<Me> {
    const m = (await this.call("GET", "/v1/me")) as Record<string, unknown>;
    if (!m || typeof m.account_id !== "string" || typeof m.device_id !== "string" || typeof m.username !== "string") {
      throw new HallpassError(ClientCodes.badResponse, "hallpass: unexpected /v1/me answer");
    }
    await this.noteUsername(m.account_id, m.username);
    return { accountId: m.account_id, deviceId: m.device_id, username: m.username, recoveryCodesLeft: Number(m.recovery_codes_left ?? 0) };
  }

  /** rename changes the account's username (same policy as signup: username_invalid, username_taken). */
  async rename(username: string): Promise<Me> {
    const m = (await this.call("PATCH", "/v1/me", { username: String(username) })) as Record<string, unknown>;
    if (!m || typeof m.account_id !== "string" || typeof m.username !== "string" || typeof m.device_id !== "string") {
      throw new HallpassError(ClientCodes.badResponse, "hallpass: unexpected /v1/me answer");
    }
    await this.noteUsername(m.account_id, m.username);
    return { accountId: m.account_id, deviceId: m.device_id, username: m.username, recoveryCodesLeft: Number(m.recovery_codes_left ?? 0) };
  }

  private async noteUsername(accountId: string, username: string): Promise<void> {
    const r = this.rec;
    if (!r || r.accountId !== accountId || r.username === username) return;
    await this.withLock(async () => {
      const stale = this.dirty && !(await this.saveDirty());
      if (!this.dirty) {
        // Another tab may have refreshed since this one last looked: write
        // the new name over the storage's tokens, never over an older
        // refresh token held in memory (as refreshLocked re-reads).
        const stored = await this.readStored();
        if (!stored) return;
        this.adopt(stored, stale);
      }
      const cur = this.rec;
      if (!cur || cur.accountId !== accountId || cur.username === username) return;
      await this.persist({ ...cur, username, generation: cur.generation + 1 });
      this.emit("statechange", { state: this.state() });
    });
  }

  /**
   * createLinkCode makes a single-use code (10 minutes by default) that a
   * new device redeems with link. SECURITY: whoever redeems it first joins
   * the account; show it to the user only.
   */
  async createLinkCode(): Promise<LinkCode> {
    const v = (await this.call("POST", "/v1/me/link-codes")) as Record<string, unknown>;
    const expiresAt = new Date(String(v?.expires_at));
    if (!validCodeText(v?.code) || isNaN(expiresAt.getTime())) throw new HallpassError(ClientCodes.badResponse, "hallpass: missing or malformed link code");
    return { code: v.code, expiresAt };
  }

  /**
   * createRecoveryCodes makes a new set of 10 single-use recovery codes,
   * replacing any earlier set. They are shown once: the server keeps only
   * digests. SECURITY: have the user write them down; never log or store
   * them beside the session.
   */
  async createRecoveryCodes(): Promise<string[]> {
    const v = (await this.call("POST", "/v1/me/recovery-codes")) as { codes?: unknown };
    const codes = v?.codes;
    if (!Array.isArray(codes) || codes.length === 0 || codes.length > 100 || !codes.every(validCodeText)) {
      throw new HallpassError(ClientCodes.badResponse, "hallpass: missing or malformed recovery codes");
    }
    return codes as string[];
  }

  /** devices lists the account's devices, signed-out ones included. */
  async devices(): Promise<Device[]> {
    const v = (await this.call("GET", "/v1/me/devices")) as { devices?: unknown };
    if (!Array.isArray(v?.devices)) throw new HallpassError(ClientCodes.badResponse, "hallpass: unexpected device list");
    return v.devices.map((d: Record<string, unknown>) => ({
      id: String(d.id),
      name: String(d.name ?? ""),
      created: new Date(String(d.created)),
      lastUsed: new Date(String(d.last_used)),
      revoked: d.revoked ? new Date(String(d.revoked)) : null,
      active: d.active === true,
      current: d.current === true,
    }));
  }

  /**
   * revokeDevice signs a device of the account out: its refresh token stops
   * working and its access tokens are refused. Another account's device, or
   * an unknown id, is not_found. Revoking this device ends this session.
   */
  async revokeDevice(id: string): Promise<void> {
    if (!id || typeof id !== "string") throw new HallpassError(ClientCodes.invalidArgument, "hallpass: empty device id");
    await this.call("DELETE", "/v1/me/devices/" + encodeURIComponent(id));
    if (this.rec?.deviceId === id) await this.withLock(() => this.endSession("revoked"));
  }

  /**
   * logout ends this device's session on the server and drops it here,
   * with the device key. The account lives on: another of its devices, a
   * link code or a recovery code brings it back to a device. If the server
   * cannot be reached the session is kept and the error thrown.
   */
  async logout(): Promise<void> {
    await this.ending("POST", "/v1/logout", "logout");
  }

  /**
   * deleteAccount deletes the account: every device is signed out, every
   * token refused, and the username stays taken for a while (30 days by
   * default). It cannot be undone.
   */
  async deleteAccount(): Promise<void> {
    await this.ending("DELETE", "/v1/me", "deleted");
  }

  private async ending(method: string, path: string, reason: SignedOutReason): Promise<void> {
    this.checkOpen();
    if (this.busy) throw new HallpassError(ClientCodes.busy, "hallpass: a signup, link, recovery, logout or deletion is already running");
    this.busy = true;
    try {
      try {
        await this.call(method, path);
      } catch (err) {
        // Ended already (by the server, another device or tab): the local
        // session is of no use any more. A deletion did not happen, though.
        const gone = err instanceof HallpassError && (err.code === ServerCodes.invalidGrant || err.code === ServerCodes.tokenRevoked || err.code === ClientCodes.noSession);
        if (!gone) throw err;
        await this.withLock(() => this.endSession(err.code === ServerCodes.invalidGrant ? "invalid_grant" : reason));
        if (method === "DELETE") throw err;
        return;
      }
      await this.withLock(() => this.endSession(reason));
    } finally {
      this.busy = false;
    }
  }

  /**
   * socketAuth returns the auth payload of a socket.io handshake with a
   * hallpass-protected server (socketio/socketauth): the access token and a
   * proof for GET <origin of url><path> ("/socket.io/" by default, with its
   * trailing slash; the namespace and the query that engine.io adds are not
   * part of it). Call it for every connection attempt:
   * io(url, { auth: (cb) => { client.socketAuth(url).then(cb, (err) => cb({})) } }).
   */
  async socketAuth(url: string, opts: SocketAuthOptions = {}): Promise<SocketAuth> {
    this.checkOpen();
    const u = new URL(url);
    if (!this.origins.has(u.origin)) {
      throw new HallpassError(ClientCodes.otherOrigin, "hallpass: the socket.io server is not the issuer or a configured origin; the token is not sent there");
    }
    let path = opts.path ?? "/socket.io/";
    if (!path.startsWith("/") || /[?#\s]/.test(path)) throw new HallpassError(ClientCodes.invalidArgument, "hallpass: the socket.io path must start with / and have no query");
    if (!path.endsWith("/")) path += "/";
    const rec = await this.session();
    const proof = await createProof(this.signer!, { method: "GET", url: u.origin + path, accessToken: rec.accessToken!, nonce: this.nonces.get(u.origin) }, { iat: Math.floor(this.now() / 1000) });
    return { token: rec.accessToken!, proof };
  }
}

/** validRetryId accepts what the server takes as a retry_id: base64url without padding, 22 to 64 characters. */
function validRetryId(s: unknown): s is string {
  return typeof s === "string" && /^[A-Za-z0-9_-]{22,64}$/.test(s);
}

/** newRetryId returns 128 random bits from WebCrypto, base64url: a retry id only the request that carries it knows. */
function newRetryId(): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  return b64urlEncode(b);
}

/** validCodeText accepts the shape of the API's link and recovery codes only. */
function validCodeText(s: unknown): s is string {
  return typeof s === "string" && /^[A-Za-z0-9-]{1,64}$/.test(s);
}

export { htuOf };
