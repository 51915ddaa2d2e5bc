package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
)

// proofAlg is the DPoP proof algorithm of the simulated clients and of the
// floor beside them: ES256 by default (the method of issue 12's figures,
// and what browser clients make with WebCrypto), or EdDSA. The two differ
// only in what one proof verification costs, on both sides of a ratio.
type proofAlg string

const (
	algES256 proofAlg = "ES256"
	algEdDSA proofAlg = "EdDSA"
)

func parseProofAlg(s string) (proofAlg, error) {
	switch a := proofAlg(s); a {
	case algES256, algEdDSA:
		return a, nil
	}
	return "", fmt.Errorf("-proof-alg %q: want ES256 or EdDSA", s)
}

// newKey makes a device key of the algorithm (the zero value is ES256).
func (a proofAlg) newKey() (crypto.Signer, error) {
	if a == algEdDSA {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func (a proofAlg) String() string {
	if a == "" {
		return string(algES256)
	}
	return string(a)
}
