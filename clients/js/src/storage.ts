// Where a client keeps its session and, for the built-in storages, its
// device key.

import { generateWebCryptoKey, webCryptoSigner, type Signer, type WebCryptoKey } from "./signer.js";

/**
 * SessionRecord is what a client must keep across restarts. The refresh
 * token is the one secret that cannot be got again: losing it, or keeping
 * an older one, ends this device's session.
 */
export interface SessionRecord {
  version: 1;
  /** The issuer's URL, as normalised by the client. */
  server: string;
  /** The thumbprint of the device key the tokens are bound to. */
  jkt: string;
  accountId: string;
  deviceId: string;
  username: string;
  /** May be left out by a storage (kept in memory only): the client then refreshes on first use. */
  accessToken: string | null;
  /** When the access token expires, in milliseconds since the epoch by the client's clock. */
  accessTokenExpiresAt: number;
  refreshToken: string;
  /**
   * The retry id of refreshToken (16 random bytes, base64url), made and
   * saved before that token is first presented and sent with every attempt
   * to redeem it: if the answer is lost, a retry with the same token and id
   * gets the same successor even after the server's grace window. Dropped
   * with the token it belongs to. Absent in records saved by versions
   * before 0.2 and until the first refresh.
   */
  refreshRetryId?: string;
  /** Incremented on every save: which of two records is newer. */
  generation: number;
}

/**
 * Storage keeps a client's SessionRecord, every field of it (refreshRetryId
 * included). `save` must be atomic (a crash leaves the old record or the new
 * one) and durable before it resolves: a refresh token that was used but
 * whose successor was not saved can only be got back with its retry id,
 * which the client saves before presenting the token. A storage that drops
 * refreshRetryId works, but a refresh whose answer is lost then survives
 * only inside the server's grace window. Several clients (browser tabs) may
 * share one storage: the client re-reads it before every refresh.
 *
 * A storage may also keep the device key (`deviceKey`, `deleteDeviceKey`);
 * one that does not is used with a `signer` given to createClient, such as a
 * Keychain or Keystore key (docs/mobile.md).
 */
export interface Storage {
  /** The saved record, or null when there is none. */
  load(): Promise<SessionRecord | null>;
  /** Replaces the record; null deletes it. */
  save(record: SessionRecord | null): Promise<void>;
  /**
   * The saved device key; when there is none, a new one is made and saved
   * if create is true, or null is returned.
   */
  deviceKey?(create: boolean): Promise<Signer | null>;
  /** Forgets the device key (after the session ended: the next one uses a new key). */
  deleteDeviceKey?(): Promise<void>;
}

function copy<T>(v: T): T {
  return v === null ? v : (JSON.parse(JSON.stringify(v)) as T);
}

/**
 * MemoryStorage keeps everything in memory, the device key as a
 * non-extractable WebCrypto key: for tests and for apps that keep nothing.
 * A new MemoryStorage is an empty device.
 */
export class MemoryStorage implements Storage {
  private record: SessionRecord | null = null;
  private key: WebCryptoKey | null = null;
  private pending: Promise<WebCryptoKey> | null = null;

  async load(): Promise<SessionRecord | null> {
    return copy(this.record);
  }
  async save(record: SessionRecord | null): Promise<void> {
    this.record = copy(record);
  }
  async deviceKey(create: boolean): Promise<Signer | null> {
    if (!this.key && create) {
      this.pending ??= generateWebCryptoKey("ES256", false);
      try {
        this.key = await this.pending;
      } finally {
        this.pending = null;
      }
    }
    return this.key ? webCryptoSigner(this.key) : null;
  }
  async deleteDeviceKey(): Promise<void> {
    this.key = null;
  }
}

/** Options of IndexedDBStorage. */
export interface IndexedDBStorageOptions {
  /** The database name; default "hallpass". */
  database?: string;
  /** Prefix of the record keys, so one database serves several issuers; createClient uses the server URL. */
  namespace?: string;
}

const objectStore = "state";

/**
 * IndexedDBStorage is the browser default. The device key is an ES256 key
 * made by crypto.subtle.generateKey with extractable false and stored as a
 * CryptoKey (structured clone), so the private key never exists as bytes in
 * JavaScript: code running in the page can use it while it runs, but nothing
 * can copy it out. The public key is stored as a plain JWK beside it; the
 * tokens are in a second record. Writes use strict durability.
 */
export class IndexedDBStorage implements Storage {
  private readonly dbName: string;
  private readonly ns: string;
  private db: Promise<IDBDatabase> | null = null;

  constructor(opts: IndexedDBStorageOptions = {}) {
    this.dbName = opts.database ?? "hallpass";
    this.ns = opts.namespace ?? "";
  }

  private open(): Promise<IDBDatabase> {
    this.db ??= new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open(this.dbName, 1);
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(objectStore)) req.result.createObjectStore(objectStore);
      };
      req.onsuccess = () => {
        const db = req.result;
        // Another tab upgrading the schema: let it, and reopen next time.
        db.onversionchange = () => {
          db.close();
          this.forget(db);
        };
        // Closed by the browser (site data cleared, Safari's "connection
        // lost"): a dead connection would fail every later call until a
        // reload; the next call opens a new one.
        db.onclose = () => this.forget(db);
        resolve(db);
      };
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new Error("hallpass: IndexedDB open blocked"));
    });
    return this.db.catch((err) => {
      this.db = null;
      throw err;
    });
  }

  /** forget drops the cached connection if it is db. */
  private forget(db: IDBDatabase): void {
    const cached = this.db;
    void cached?.then((c) => {
      if (c === db && this.db === cached) this.db = null;
    }, () => undefined);
  }

  /** transaction starts one on the cached connection, or on a new one if that one was closed before its close event came. */
  private async transaction(mode: IDBTransactionMode): Promise<IDBTransaction> {
    const db = await this.open();
    try {
      return db.transaction(objectStore, mode, { durability: "strict" });
    } catch (err) {
      if ((err as DOMException)?.name !== "InvalidStateError") throw err;
      this.db = null;
      return (await this.open()).transaction(objectStore, mode, { durability: "strict" });
    }
  }

  private async run<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest | void): Promise<T> {
    const tx = await this.transaction(mode);
    return new Promise<T>((resolve, reject) => {
      const req = fn(tx.objectStore(objectStore));
      tx.oncomplete = () => resolve((req ? req.result : undefined) as T);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error("hallpass: IndexedDB transaction aborted"));
    });
  }

  private k(name: string): string {
    return this.ns + "|" + name;
  }

  async load(): Promise<SessionRecord | null> {
    const v = await this.run<SessionRecord | undefined>("readonly", (s) => s.get(this.k("session")));
    return v ?? null;
  }

  async save(record: SessionRecord | null): Promise<void> {
    await this.run("readwrite", (s) => (record ? s.put(record, this.k("session")) : s.delete(this.k("session"))));
  }

  async deviceKey(create: boolean): Promise<Signer | null> {
    let key = await this.run<WebCryptoKey | undefined>("readonly", (s) => s.get(this.k("key")));
    if (!key && create) {
      const fresh = await generateWebCryptoKey("ES256", false);
      // Keep a key another tab stored meanwhile: one device, one key.
      const tx = await this.transaction("readwrite");
      key = await new Promise<WebCryptoKey>((resolve, reject) => {
        const s = tx.objectStore(objectStore);
        let result: WebCryptoKey = fresh;
        const get = s.get(this.k("key"));
        get.onsuccess = () => {
          if (get.result) result = get.result as WebCryptoKey;
          else s.put(fresh, this.k("key"));
        };
        tx.oncomplete = () => resolve(result);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error ?? new Error("hallpass: IndexedDB transaction aborted"));
      });
    }
    return key ? webCryptoSigner(key) : null;
  }

  async deleteDeviceKey(): Promise<void> {
    await this.run("readwrite", (s) => s.delete(this.k("key")));
  }
}
