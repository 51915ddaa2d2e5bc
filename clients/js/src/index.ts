// @hallpass/client: the JavaScript client of a hallpass issuer, for
// browsers, React Native and Node. See README.md.

export { createClient, HallpassClient, defaults } from "./client.js";
export type { ClientOptions, ClientEvents, Device, LinkCode, Me, SessionState, SignedOutReason, SocketAuth, SocketAuthOptions } from "./client.js";
export { ApiError, ClientCodes, HallpassError, NetworkError, ServerCodes, isSignedOut } from "./errors.js";
export type { ClientCode, ErrorCode, ServerCode } from "./errors.js";
export { IndexedDBStorage, MemoryStorage } from "./storage.js";
export type { IndexedDBStorageOptions, SessionRecord, Storage } from "./storage.js";
export { ecdsaDerToRaw, generateWebCryptoKey, importPrivateJwk, p256PublicJwk, thumbprint, webCryptoSigner } from "./signer.js";
export type { Algorithm, PublicJwk, Signer, WebCryptoKey } from "./signer.js";
export { createProof, htuOf } from "./dpop.js";
export type { ProofOptions, ProofRequest } from "./dpop.js";
