package client

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"

	"github.com/hallpass/hallpass/dpop"
)

// Algorithm names a device key type by its DPoP proof alg.
type Algorithm string

const (
	// ES256 is ECDSA P-256: the key type iOS Secure Enclave and Android
	// Keystore (StrongBox) hold non-exportable. Prefer it on devices.
	ES256 Algorithm = "ES256"
	// EdDSA is Ed25519, for software keys.
	EdDSA Algorithm = "EdDSA"
)

// GenerateDeviceKey creates a software device key from crypto/rand. Apps
// with a hardware key store create the key there instead and pass its
// crypto.Signer to New.
func GenerateDeviceKey(alg Algorithm) (crypto.Signer, error) {
	switch alg {
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w: unknown algorithm %q", ErrUnsupportedKey, string(alg))
}

// KeyAlgorithm returns the Algorithm of a device key, or ErrUnsupportedKey.
func KeyAlgorithm(key crypto.Signer) (Algorithm, error) {
	if key == nil {
		return "", ErrUnsupportedKey
	}
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		if pub != nil && pub.Curve == elliptic.P256() {
			return ES256, nil
		}
	case ed25519.PublicKey:
		if len(pub) == ed25519.PublicKeySize {
			return EdDSA, nil
		}
	}
	return "", ErrUnsupportedKey
}

// thumbprint validates key and returns its jkt.
func thumbprint(key crypto.Signer) (string, error) {
	if _, err := KeyAlgorithm(key); err != nil {
		return "", err
	}
	jkt, err := dpop.Thumbprint(key.Public())
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnsupportedKey, err)
	}
	return jkt, nil
}
