package main

import (
	"crypto"
	"fmt"

	"github.com/hallpass/hallpass/client"
)

// proofAlg is the DPoP proof algorithm of the simulated clients and of the
// floor beside them: ES256 by default (the method of issue 12's figures,
// and what browser clients make with WebCrypto), or EdDSA. The two differ
// only in what one proof verification costs, on both sides of a ratio.
type proofAlg string

const (
	algES256 = proofAlg(client.ES256)
	algEdDSA = proofAlg(client.EdDSA)
)

func parseProofAlg(s string) (proofAlg, error) {
	switch a := proofAlg(s); a {
	case algES256, algEdDSA:
		return a, nil
	}
	return "", fmt.Errorf("-proof-alg %q: want ES256 or EdDSA", s)
}

// newKey makes a device key of the algorithm (the zero value is ES256), as
// the Go client does.
func (a proofAlg) newKey() (crypto.Signer, error) {
	return client.GenerateDeviceKey(client.Algorithm(a.String()))
}

func (a proofAlg) String() string {
	if a == "" {
		return string(algES256)
	}
	return string(a)
}
