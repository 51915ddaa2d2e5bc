package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"
)

// ProofOptions configures NewProofWithOptions. The zero value is usable.
type ProofOptions struct {
	// Now gives iat. Default time.Now.
	Now func() time.Time
	// Rand is the source of the jti (128 bits) and is passed to the
	// signer. Default crypto/rand.
	Rand io.Reader
	// FullySpecifiedAlg makes Ed25519 proofs carry alg "Ed25519" (RFC
	// 9864) instead of "EdDSA". Verify accepts both; "EdDSA" is the
	// default because older servers know only that name.
	FullySpecifiedAlg bool
}

// NewProof makes a DPoP proof for one request, signed by signer: an Ed25519
// key (alg EdDSA) or an ECDSA P-256 key (alg ES256), possibly in hardware
// behind crypto.Signer. url is the request URL; its query and fragment are
// left out of htu. accessToken, when not "", is bound with ath; nonce, when
// not "", is the last DPoP-Nonce the server sent.
func NewProof(signer crypto.Signer, method, url, accessToken, nonce string) (string, error) {
	return NewProofWithOptions(signer, method, url, accessToken, nonce, ProofOptions{})
}

// NewProofWithOptions is NewProof with an injected clock and randomness.
func NewProofWithOptions(signer crypto.Signer, method, url, accessToken, nonce string, opts ProofOptions) (string, error) {
	if signer == nil {
		return "", errors.New("dpop: nil signer")
	}
	if method == "" {
		return "", errors.New("dpop: empty method")
	}
	htu := stripQueryAndFragment(url)
	if _, err := normalizeURL(htu); err != nil {
		return "", fmt.Errorf("dpop: url is not an absolute http(s) URL without userinfo")
	}
	now, rnd := opts.Now, opts.Rand
	if now == nil {
		now = time.Now
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	alg, key, err := signerJWK(signer, opts.FullySpecifiedAlg)
	if err != nil {
		return "", err
	}
	var jti [16]byte
	if _, err := io.ReadFull(rnd, jti[:]); err != nil {
		return "", fmt.Errorf("dpop: reading randomness: %w", err)
	}
	header, err := proofHeader(alg, key)
	if err != nil {
		return "", err
	}
	claims, err := proofClaims(jti, method, htu, now().Unix(), accessToken, nonce)
	if err != nil {
		return "", err
	}
	signingInput := b64.EncodeToString(header) + "." + b64.EncodeToString(claims)
	sig, err := signProof(signer, rnd, alg, signingInput)
	if err != nil {
		return "", err
	}
	return signingInput + "." + b64.EncodeToString(sig), nil
}

// signerJWK returns the alg and public JWK for signer's key, which must be
// Ed25519 or ECDSA P-256.
func signerJWK(signer crypto.Signer, fullySpecifiedAlg bool) (alg string, key publicJWK, err error) {
	switch pub := signer.Public().(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return "", publicJWK{}, errors.New("dpop: ECDSA key is not P-256")
		}
		k, err := ecJWK(pub)
		if err != nil {
			return "", publicJWK{}, err
		}
		return AlgES256, k, nil
	case ed25519.PublicKey:
		if len(pub) != ed25519.PublicKeySize {
			return "", publicJWK{}, errors.New("dpop: invalid Ed25519 public key")
		}
		alg, key.ed = AlgEdDSA, pub
		if fullySpecifiedAlg {
			alg = AlgEd25519
		}
		return alg, key, nil
	}
	return "", publicJWK{}, errors.New("dpop: signer key must be Ed25519 or ECDSA P-256")
}

// proofHeader is the JOSE header of a proof: typ, alg and the public jwk.
func proofHeader(alg string, key publicJWK) ([]byte, error) {
	return json.Marshal(struct {
		Typ string          `json:"typ"`
		Alg string          `json:"alg"`
		JWK json.RawMessage `json:"jwk"`
	}{"dpop+jwt", alg, key.marshalJSON()})
}

// proofClaims is the claims set of a proof; ath binds accessToken when not "".
func proofClaims(jti [16]byte, method, htu string, iat int64, accessToken, nonce string) ([]byte, error) {
	var ath string
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		ath = b64.EncodeToString(sum[:])
	}
	return json.Marshal(struct {
		JTI   string `json:"jti"`
		HTM   string `json:"htm"`
		HTU   string `json:"htu"`
		IAT   int64  `json:"iat"`
		ATH   string `json:"ath,omitempty"`
		Nonce string `json:"nonce,omitempty"`
	}{b64.EncodeToString(jti[:]), method, htu, iat, ath, nonce})
}

// signProof signs signingInput with signer and returns the JWS signature for
// alg: r || s for ES256, the 64-byte Ed25519 signature otherwise.
func signProof(signer crypto.Signer, rnd io.Reader, alg, signingInput string) ([]byte, error) {
	if alg == AlgES256 {
		h := sha256.Sum256([]byte(signingInput))
		der, err := signer.Sign(rnd, h[:], crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("dpop: signing: %w", err)
		}
		return derToRaw(der)
	}
	sig, err := signer.Sign(rnd, []byte(signingInput), crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("dpop: signing: %w", err)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, errors.New("dpop: signer returned a malformed Ed25519 signature")
	}
	return sig, nil
}

// marshalJSON is the public JWK, members in RFC 7638 order.
func (k publicJWK) marshalJSON() []byte {
	if k.ec != nil {
		return fmt.Appendf(nil, `{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`,
			b64.EncodeToString(k.ecPt[1:33]), b64.EncodeToString(k.ecPt[33:65]))
	}
	return fmt.Appendf(nil, `{"crv":"Ed25519","kty":"OKP","x":"%s"}`, b64.EncodeToString(k.ed))
}

// derToRaw converts the ASN.1 signature crypto.Signer returns for ECDSA to
// the fixed-size r || s of JWS (RFC 7518 section 3.4).
func derToRaw(der []byte) ([]byte, error) {
	var v struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &v)
	if err != nil || len(rest) != 0 || v.R.Sign() <= 0 || v.S.Sign() <= 0 ||
		v.R.BitLen() > 256 || v.S.BitLen() > 256 {
		return nil, errors.New("dpop: signer returned a malformed ECDSA signature")
	}
	out := make([]byte, 64)
	v.R.FillBytes(out[:32])
	v.S.FillBytes(out[32:])
	return out, nil
}
