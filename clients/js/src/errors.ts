// Errors. Every error the client throws is a HallpassError whose `code` is
// a stable string: the server's code for an answer of the server (ApiError),
// or one of the client's own codes below. Switch on `code`, never on the
// message.

/**
 * The server's stable error codes (the `code` member of its
 * application/problem+json answers, docs/protocol.md "Codes"), with what an
 * app does about each.
 */
export const ServerCodes = {
  /** Malformed request: a bug in the app or the client. */
  invalidRequest: "invalid_request",
  /** The username fails the policy; ApiError.reason says why. Ask for another name. */
  usernameInvalid: "username_invalid",
  /** The name (or one that looks like it) is taken. Ask for another name. */
  usernameTaken: "username_taken",
  /** Link code wrong, expired or used. Make a new one on a signed-in device. */
  invalidLinkCode: "invalid_link_code",
  /** Username or recovery code wrong, or the code used. Check both; try another code. */
  invalidRecoveryCode: "invalid_recovery_code",
  /** No link code: the account has as many devices as allowed (live link codes counted). Sign a device out first. */
  deviceLimit: "device_limit",
  /** The proof was refused. The client makes a fresh one per request; seen by the app only for a clock far off or a wrong server URL. */
  invalidDPoPProof: "invalid_dpop_proof",
  /** The server demands a nonce; the client retries once by itself. */
  useDPoPNonce: "use_dpop_nonce",
  /** The device is signed out for good (state cleared, "signedout" event). Come back with a link code or a recovery code. */
  invalidGrant: "invalid_grant",
  unsupportedGrantType: "unsupported_grant_type",
  /** Access token refused; the client refreshes and retries once by itself. */
  invalidToken: "invalid_token",
  /** Access token expired; the client refreshes and retries once by itself. */
  tokenExpired: "token_expired",
  /** Device signed out or token revoked; the client refreshes once (invalid_grant follows when the device is signed out). */
  tokenRevoked: "token_revoked",
  /** Admin API only. */
  unauthorized: "unauthorized",
  /** Gateway only. */
  forbidden: "forbidden",
  /** No such endpoint, or a device that is not of this account. */
  notFound: "not_found",
  methodNotAllowed: "method_not_allowed",
  requestTooLarge: "request_too_large",
  unsupportedMediaType: "unsupported_media_type",
  /** Too many attempts: wait ApiError.retryAfter seconds. */
  rateLimited: "rate_limited",
  /** A bug on the server: quote ApiError.requestId. */
  internalError: "internal_error",
  /** Gateway only: the upstream did not answer. */
  badGateway: "bad_gateway",
  /** Store or dependency down; nothing changed. Retry after ApiError.retryAfter. */
  unavailable: "unavailable",
} as const;

/**
 * The client's own codes, for failures that are not an answer of the
 * server.
 */
export const ClientCodes = {
  /** No session: sign up, link or recover first (or the session ended). */
  noSession: "no_session",
  /** signup, link or recover on a client that holds a session. */
  alreadySignedIn: "already_signed_in",
  /** A request for an origin that is neither the server nor one of `origins`: the token is never sent there. */
  otherOrigin: "other_origin",
  /** The server could not be reached, or its answer was lost. */
  networkError: "network_error",
  /** The server answered something that is not the documented API. */
  badResponse: "bad_response",
  /** Saving the state failed; the tokens are kept in memory and saved again on the next call (unless another tab or process saved newer ones meanwhile). */
  storageError: "storage_error",
  /** The stored state belongs to another server or device key. */
  stateMismatch: "state_mismatch",
  /** A signup, link, recovery, logout or deletion is already running in this client. */
  busy: "busy",
  /** The client was closed. */
  closed: "closed",
  /** Invalid options or arguments. */
  invalidArgument: "invalid_argument",
} as const;

export type ServerCode = (typeof ServerCodes)[keyof typeof ServerCodes];
export type ClientCode = (typeof ClientCodes)[keyof typeof ClientCodes];
/** Any code: the server's, the client's, or one this version does not know yet (a server newer than the client). */
export type ErrorCode = ServerCode | ClientCode | (string & {});

/** Every error thrown by the client. */
export class HallpassError extends Error {
  /** Stable code: switch on it. */
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "HallpassError";
    this.code = code;
  }
}

/**
 * An error answer of the server (RFC 9457 problem details). Its message
 * holds only the status and the code; `title` and `detail` are the server's
 * fixed text, for display.
 */
export class ApiError extends HallpassError {
  /** HTTP status. */
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  /** On 5xx answers: the id to quote to the operator. */
  readonly requestId: string;
  /** Retry-After in seconds, 0 when absent. */
  readonly retryAfter: number;
  /** For username_invalid: too_short, too_long, disallowed_character, misplaced_punctuation, mixed_script, reserved, confusable (treat others like disallowed_character). */
  readonly reason: string;
  constructor(init: { status: number; code: string; title?: string; detail?: string; requestId?: string; retryAfter?: number; reason?: string }) {
    const code = init.code || `http_${init.status}`;
    super(code, `hallpass: server answered ${code} (HTTP ${init.status})`);
    this.name = "ApiError";
    this.status = init.status;
    this.title = init.title ?? "";
    this.detail = init.detail ?? "";
    this.requestId = init.requestId ?? "";
    this.retryAfter = init.retryAfter ?? 0;
    this.reason = init.reason ?? "";
  }
}

/** The server could not be reached or the answer was lost (code network_error). */
export class NetworkError extends HallpassError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ClientCodes.networkError, message, options);
    this.name = "NetworkError";
  }
}

/** isSignedOut reports an error after which the device holds no session: come back with a link or recovery code. */
export function isSignedOut(err: unknown): boolean {
  return err instanceof HallpassError && (err.code === ServerCodes.invalidGrant || err.code === ClientCodes.noSession);
}

const codeShape = /^[a-z0-9_]{1,64}$/;

/** validCode accepts the shape of the API's codes only, so that a hostile server cannot put arbitrary text into error messages and logs. */
export function validCode(s: unknown): s is string {
  return typeof s === "string" && codeShape.test(s);
}

/** clean keeps printable text only, bounded. */
function clean(s: unknown, n: number): string {
  if (typeof s !== "string") return "";
  // C0, DEL, C1 controls and the bidirectional overrides.
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, "").slice(0, n);
}

/** challengeError extracts error="..." from a DPoP WWW-Authenticate challenge (RFC 9449 section 7.1). */
export function challengeError(header: string | null): string {
  if (!header) return "";
  const m = /(?:^|[\s,])DPoP\s+(?:[^]*?[\s,])?error\s*=\s*"?([a-z0-9_]+)"?/i.exec(header);
  return m && validCode(m[1]) ? m[1]! : "";
}

const maxErrorBody = 16 << 10;

/**
 * apiErrorFrom builds an ApiError from a non-2xx answer, reading at most
 * 16 KiB of its body (or taking body, when the caller read it already). The
 * code comes from the problem+json body, or else from the WWW-Authenticate
 * DPoP challenge.
 */
export async function apiErrorFrom(res: Response, body?: string): Promise<ApiError> {
  let code = "";
  let title = "";
  let detail = "";
  let requestId = "";
  let reason = "";
  const ct = (res.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (ct === "application/problem+json" || ct === "application/json") {
    try {
      const text = body ?? (await res.text());
      if (text.length <= maxErrorBody) {
        const p = JSON.parse(text) as Record<string, unknown>;
        if (p && typeof p === "object") {
          code = validCode(p.code) ? p.code : validCode(p.error) ? p.error : "";
          title = clean(p.title, 200);
          detail = clean(p.detail, 500);
          requestId = clean(p.request_id, 100);
          reason = validCode(p.reason) ? p.reason : "";
        }
      }
    } catch {
      // Not JSON: the status and the challenge are all there is.
    }
  } else if (body === undefined) {
    try {
      await res.body?.cancel();
    } catch {
      // ignore
    }
  }
  if (!code) code = challengeError(res.headers.get("www-authenticate"));
  let retryAfter = 0;
  const ra = res.headers.get("retry-after");
  if (ra && /^\d{1,5}$/.test(ra.trim())) retryAfter = Math.min(Number(ra.trim()), 86400);
  return new ApiError({ status: res.status, code, title, detail, requestId, retryAfter, reason });
}
