package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hallpass/hallpass/internal/strictjson"
)

// Defaults for Options.
const (
	DefaultMaxAge       = 60 * time.Second
	DefaultMaxFuture    = 5 * time.Second
	DefaultMaxProofSize = 8 << 10
)

// Algorithm names accepted in a proof's alg header.
const (
	AlgES256   = "ES256"   // ECDSA P-256 SHA-256, signature r||s (RFC 7518)
	AlgEdDSA   = "EdDSA"   // Ed25519 by its polymorphic name (RFC 8037)
	AlgEd25519 = "Ed25519" // Ed25519 by its fully-specified name (RFC 9864)
)

// Request is what the server knows about the HTTP request a proof came with.
// Every field comes from the server side, never from the proof.
type Request struct {
	// Method is the request method, compared case-sensitively with htm.
	Method string
	// URL is the absolute URL of the request as the server is configured to
	// see itself (public scheme, host and port, behind any proxy, plus the
	// request path). Never build it from Host or X-Forwarded-* headers the
	// client controls. Query and fragment are ignored.
	URL string
	// AccessToken is the token from "Authorization: DPoP <token>", or ""
	// for a request without one (token request, signup). When set, the
	// proof must carry ath = base64url(SHA-256(AccessToken)).
	AccessToken string
	// JKT is the thumbprint the presented token is bound to (its cnf.jkt),
	// or "" when there is no bound token yet. When set, the proof key's
	// thumbprint must equal it.
	JKT string
}

// Options configures Verify. Replay is required; the zero value of every
// other field selects the documented default.
type Options struct {
	// Replay records each accepted proof until it leaves the window.
	// Required: a proof without replay detection can be reused for the
	// whole window by anyone who sees it.
	Replay ReplayCache
	// Nonces, when set, makes a server nonce mandatory and checks it
	// (RFC 9449 section 8). Leave nil on endpoints that do not demand one.
	Nonces NonceChecker
	// MaxAge is how far iat may lie in the past. Default 60s.
	MaxAge time.Duration
	// MaxFuture is how far iat may lie in the future (client clock ahead).
	// Default 5s. It is also the margin added to replay-cache entries for
	// clock differences between nodes.
	MaxFuture time.Duration
	// Now is read once per Verify call. Default time.Now.
	Now func() time.Time
	// MaxProofSize bounds the proof in bytes. Default 8 KiB.
	MaxProofSize int
}

// Proof is a verified proof.
type Proof struct {
	// PublicKey is the proof key: ed25519.PublicKey or *ecdsa.PublicKey
	// (P-256).
	PublicKey crypto.PublicKey
	// JKT is the RFC 7638 SHA-256 thumbprint of PublicKey, base64url: the
	// value to put in, or compare with, a token's cnf.jkt.
	JKT string
	// Algorithm is the alg header: AlgES256, AlgEdDSA or AlgEd25519.
	Algorithm string
	// JTI is the proof's unique identifier (client-chosen: do not log it
	// unescaped).
	JTI string
	// IssuedAt is the iat claim.
	IssuedAt time.Time
}

// Verify checks a DPoP proof (RFC 9449 section 4.3) against the request it
// came with and returns its key. It checks, in order: size and compact JWS
// form; header typ, alg (AlgES256, AlgEdDSA, AlgEd25519), no crit, and a
// public jwk matching alg; the signature; the claims jti, htm, htu, iat (and
// ath, nonce) present and well typed; htm, htu, the iat window, ath, the key
// binding (req.JKT), the server nonce (opts.Nonces); and last, that the
// proof was not seen before (opts.Replay), so that a rejected proof never
// uses a replay-cache entry. JSON with duplicate member names is refused.
//
// Errors wrap one of this package's sentinels; see ErrorCode for the HTTP
// response. SECURITY: a nil error means the request was made by the holder
// of Proof.PublicKey; whether that key may act (is it the key the token is
// bound to?) is decided by req.JKT or by the caller.
func Verify(ctx context.Context, taintedProof string, req Request, opts Options) (*Proof, error) {
	cfg, err := newVerifyConfig(opts)
	if err != nil {
		return nil, err
	}
	wantURL, err := requestURL(req)
	if err != nil {
		return nil, err
	}
	now := cfg.now()

	p, err := parseProof(taintedProof, cfg.maxSize)
	if err != nil {
		return nil, err
	}
	if err := p.checkRequest(req, wantURL); err != nil {
		return nil, err
	}
	if err := p.checkTime(now, cfg); err != nil {
		return nil, err
	}
	if err := p.checkATH(req.AccessToken); err != nil {
		return nil, err
	}
	jkt := p.key.thumbprint()
	if req.JKT != "" && subtle.ConstantTimeCompare([]byte(jkt), []byte(req.JKT)) != 1 {
		return nil, ErrKeyMismatch
	}
	if err := checkNonce(opts.Nonces, p.nonce); err != nil {
		return nil, err
	}
	if err := checkReplay(ctx, opts.Replay, jkt, p, now, cfg); err != nil {
		return nil, err
	}
	return &Proof{
		PublicKey: p.key.public(),
		JKT:       jkt,
		Algorithm: p.alg,
		JTI:       p.jti,
		IssuedAt:  p.iat,
	}, nil
}

// verifyConfig is the Options that Verify uses, with defaults applied.
type verifyConfig struct {
	maxAge, maxFuture time.Duration
	maxSize           int
	now               func() time.Time
}

// newVerifyConfig checks opts and applies the documented defaults.
func newVerifyConfig(opts Options) (verifyConfig, error) {
	if opts.Replay == nil {
		return verifyConfig{}, fmt.Errorf("%w: Options.Replay is nil", ErrConfig)
	}
	if opts.MaxAge < 0 || opts.MaxFuture < 0 || opts.MaxProofSize < 0 {
		return verifyConfig{}, fmt.Errorf("%w: negative limit in Options", ErrConfig)
	}
	cfg := verifyConfig{maxAge: opts.MaxAge, maxFuture: opts.MaxFuture, maxSize: opts.MaxProofSize, now: opts.Now}
	if cfg.maxAge == 0 {
		cfg.maxAge = DefaultMaxAge
	}
	if cfg.maxFuture == 0 {
		cfg.maxFuture = DefaultMaxFuture
	}
	if cfg.maxSize == 0 {
		cfg.maxSize = DefaultMaxProofSize
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	return cfg, nil
}

// requestURL checks the server-side req and returns its URL in normal form.
func requestURL(req Request) (string, error) {
	if req.Method == "" {
		return "", fmt.Errorf("%w: Request.Method is empty", ErrConfig)
	}
	wantURL, err := normalizeURL(req.URL)
	if err != nil {
		// Not %w: this is the server's URL, not the client's htu.
		return "", fmt.Errorf("%w: Request.URL is not an absolute http(s) URL without userinfo", ErrConfig)
	}
	return wantURL, nil
}

// checkRequest checks htm and htu against the request's method and URL.
func (p *parsedProof) checkRequest(req Request, wantURL string) error {
	if p.htm != req.Method {
		return ErrMethod
	}
	gotURL, err := normalizeURL(p.htu)
	if err != nil {
		return err // wraps ErrURL
	}
	if gotURL != wantURL {
		return ErrURL
	}
	return nil
}

// checkTime checks that iat lies within [now-maxAge, now+maxFuture].
func (p *parsedProof) checkTime(now time.Time, cfg verifyConfig) error {
	if p.iat.Before(now.Add(-cfg.maxAge)) {
		return ErrTooOld
	}
	if p.iat.After(now.Add(cfg.maxFuture)) {
		return ErrFuture
	}
	return nil
}

// checkATH checks ath against accessToken when accessToken is not "".
func (p *parsedProof) checkATH(accessToken string) error {
	if accessToken == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(accessToken))
	var want [43]byte
	b64.Encode(want[:], sum[:])
	if !p.hasATH || subtle.ConstantTimeCompare([]byte(p.ath), want[:]) != 1 {
		return ErrAccessTokenHash
	}
	return nil
}

// checkNonce checks nonce with nonces when nonces is not nil.
func checkNonce(nonces NonceChecker, nonce string) error {
	if nonces == nil {
		return nil
	}
	if err := nonces.Check(nonce); err != nil {
		if errors.Is(err, ErrNonceRequired) || errors.Is(err, ErrNonceInvalid) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrNonceInvalid, err)
	}
	return nil
}

// checkReplay records the proof in replay until it leaves the window,
// refusing one seen before and failing closed when replay fails.
func checkReplay(ctx context.Context, replay ReplayCache, jkt string, p *parsedProof, now time.Time, cfg verifyConfig) error {
	seen, err := replay.Seen(ctx, NewReplayKey(jkt, p.jti), now, p.iat.Add(cfg.maxAge+cfg.maxFuture))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrReplayCheck, err)
	}
	if seen {
		return ErrReplay
	}
	return nil
}

// parsedProof is a proof whose form and signature have been checked.
type parsedProof struct {
	alg           string
	key           publicJWK
	jti, htm, htu string
	iat           time.Time
	ath, nonce    string
	hasATH        bool
}

// parseProof checks form, header and signature and reads the claims.
func parseProof(tainted string, maxSize int) (*parsedProof, error) {
	if len(tainted) > maxSize {
		return nil, ErrTooLarge
	}
	dot1 := strings.IndexByte(tainted, '.')
	if dot1 <= 0 {
		return nil, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	dot2 := strings.IndexByte(tainted[dot1+1:], '.') + dot1 + 1
	if dot2 <= dot1+1 || dot2 == len(tainted)-1 || strings.IndexByte(tainted[dot2+1:], '.') >= 0 {
		return nil, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	// Only the base64url alphabet and the two dots: the base64 decoder
	// would otherwise skip CR and LF.
	for i := 0; i < len(tainted); i++ {
		if !isB64URL[tainted[i]] && i != dot1 && i != dot2 {
			return nil, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
		}
	}
	hdrB64, payB64, sigB64 := tainted[:dot1], tainted[dot1+1:dot2], tainted[dot2+1:]

	// One allocation for a copy of the proof and its three decoded parts.
	buf := make([]byte, len(tainted)+b64.DecodedLen(len(hdrB64))+b64.DecodedLen(len(payB64))+b64.DecodedLen(len(sigB64)))
	raw := buf[:copy(buf, tainted)]
	signingInput := raw[:dot2]
	rest := buf[len(raw):]
	hdr, rest, err := decodePart(rest, raw[:dot1])
	if err != nil {
		return nil, err
	}
	payload, rest, err := decodePart(rest, raw[dot1+1:dot2])
	if err != nil {
		return nil, err
	}
	sig, _, err := decodePart(rest, raw[dot2+1:])
	if err != nil {
		return nil, err
	}

	p := new(parsedProof)
	if err := p.readHeader(hdr); err != nil {
		return nil, err
	}
	if !verifySignature(p.alg, p.key, signingInput, sig) {
		return nil, ErrSignature
	}
	if err := p.readClaims(payload); err != nil {
		return nil, err
	}
	return p, nil
}

var isB64URL = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = true
	}
	return t
}()

func decodePart(dst, src []byte) (decoded, rest []byte, err error) {
	n, err := b64.Decode(dst, src)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: invalid base64url", ErrMalformed)
	}
	return dst[:n], dst[n:], nil
}

// readHeader reads the JOSE header. Members are checked in a fixed order
// (typ, alg, crit, jwk) whatever their order in the JSON, so an attack
// always fails for the same reason.
func (p *parsedProof) readHeader(hdr []byte) error {
	h, jwk, err := readJOSEHeader(hdr)
	if err != nil {
		return err
	}
	if !h.hasTyp || !h.typOK || h.typ != "dpop+jwt" {
		return ErrType
	}
	if !h.hasAlg || !h.algOK {
		return ErrAlgorithm
	}
	switch h.alg {
	case AlgES256, AlgEdDSA, AlgEd25519:
	default:
		return ErrAlgorithm
	}
	if h.hasCrit {
		return ErrCritical
	}
	if jwk == nil {
		return fmt.Errorf("%w: no jwk header", ErrKey)
	}
	jr := newJSONReader(jwk, 1)
	key, err := readJWK(&jr)
	if err != nil {
		return err
	}
	if (h.alg == AlgES256) != (key.ec != nil) {
		return fmt.Errorf("%w: jwk key type does not match alg", ErrKey)
	}
	p.alg, p.key = h.alg, key
	return nil
}

// joseHeader is the typ, alg and crit members of a JOSE header, as read.
type joseHeader struct {
	typ, alg                              string
	hasTyp, hasAlg, hasCrit, typOK, algOK bool
}

// readJOSEHeader reads the header object hdr, checking its JSON form only;
// jwk is the raw jwk member. jwk points into hdr, so it is a result of its
// own, not a field of h or behind a pointer: hdr then does not escape.
func readJOSEHeader(hdr []byte) (h joseHeader, jwk []byte, err error) {
	r := newJSONReader(hdr, 0)
	var obj strictjson.Object
	if err := r.openObject(&obj); err != nil {
		return h, nil, err
	}
	for {
		name, ok, err := r.next(&obj)
		if err != nil {
			return h, nil, err
		}
		if !ok {
			break
		}
		switch string(name) {
		case "typ":
			h.hasTyp = true
			h.typ, h.typOK, err = r.readStringOrSkip()
		case "alg":
			h.hasAlg = true
			h.alg, h.algOK, err = r.readStringOrSkip()
		case "crit":
			h.hasCrit = true
			err = r.skip()
		case "jwk":
			// Read after typ and alg, whatever the member order.
			jwk, err = r.RawValue()
			err = jsonErr(err)
		default:
			err = r.skip()
		}
		if err != nil {
			return h, nil, err
		}
	}
	return h, jwk, r.end()
}

func verifySignature(alg string, key publicJWK, signingInput, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	if alg == AlgES256 {
		h := sha256.Sum256(signingInput)
		var der [72]byte
		return ecdsa.VerifyASN1(key.ec, h[:], rawToDER(der[:0], sig))
	}
	return ed25519.Verify(key.ed, signingInput, sig)
}

// rawToDER converts a JWS ES256 signature (32-byte r || 32-byte s, RFC 7518
// section 3.4) to the ASN.1 DER SEQUENCE { INTEGER r, INTEGER s } that
// crypto/ecdsa verifies. Zero or out-of-range values still encode, and are
// then refused by ecdsa.VerifyASN1.
func rawToDER(dst, sig []byte) []byte {
	r, s := derInt(sig[:32]), derInt(sig[32:])
	dst = append(dst, 0x30, byte(4+len(r)+len(s)+boolByte(r[0]&0x80 != 0)+boolByte(s[0]&0x80 != 0)))
	dst = appendDERInt(dst, r)
	return appendDERInt(dst, s)
}

// derInt strips leading zeros, keeping at least one byte.
func derInt(b []byte) []byte {
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

func appendDERInt(dst, v []byte) []byte {
	if v[0]&0x80 != 0 {
		dst = append(dst, 0x02, byte(len(v)+1), 0)
	} else {
		dst = append(dst, 0x02, byte(len(v)))
	}
	return append(dst, v...)
}

func boolByte(b bool) int {
	if b {
		return 1
	}
	return 0
}

var errClaimType = fmt.Errorf("%w: claim of the wrong type", ErrClaims)

// readClaims reads the claims; jti, htm, htu and iat are required.
func (p *parsedProof) readClaims(payload []byte) error {
	var has requiredClaims
	r := newJSONReader(payload, 0)
	var obj strictjson.Object
	if err := r.openObject(&obj); err != nil {
		return err
	}
	for {
		name, ok, err := r.next(&obj)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if err := p.readClaim(&r, name, &has); err != nil {
			return err
		}
	}
	if err := r.end(); err != nil {
		return err
	}
	if !has.jti || !has.htm || !has.htu || !has.iat || p.jti == "" || p.htm == "" {
		return fmt.Errorf("%w: jti, htm, htu or iat missing", ErrClaims)
	}
	return nil
}

// requiredClaims records which required claims readClaims has seen.
type requiredClaims struct{ jti, htm, htu, iat bool }

// readClaim reads the value of claim name into p, noting it in has.
func (p *parsedProof) readClaim(r *jsonReader, name []byte, has *requiredClaims) error {
	var dst *string
	switch string(name) {
	case "jti":
		dst, has.jti = &p.jti, true
	case "htm":
		dst, has.htm = &p.htm, true
	case "htu":
		dst, has.htu = &p.htu, true
	case "ath":
		dst, p.hasATH = &p.ath, true
	case "nonce":
		dst = &p.nonce
	case "iat":
		t, err := readNumericDate(r)
		if err != nil {
			return err
		}
		p.iat, has.iat = t, true
		return nil
	default:
		return r.skip()
	}
	if r.Kind() != strictjson.KindString {
		return errClaimType
	}
	var err error
	*dst, err = r.readString()
	return err
}

// readNumericDate reads a claim value that must be a NumericDate.
func readNumericDate(r *jsonReader) (time.Time, error) {
	if r.Kind() != strictjson.KindNumber {
		return time.Time{}, errClaimType
	}
	num, err := r.readNumber()
	if err != nil {
		return time.Time{}, err
	}
	t, ok := parseNumericDate(num)
	if !ok {
		return time.Time{}, errClaimType
	}
	return t, nil
}

// parseNumericDate reads a JWT NumericDate (RFC 7519 section 2): seconds
// since the epoch, possibly fractional. Values outside [0, 2^40) are refused.
func parseNumericDate(num string) (time.Time, bool) {
	const maxSec = 1 << 40
	if sec, err := strconv.ParseInt(num, 10, 64); err == nil {
		if sec < 0 || sec >= maxSec {
			return time.Time{}, false
		}
		return time.Unix(sec, 0), true
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f >= maxSec {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}
