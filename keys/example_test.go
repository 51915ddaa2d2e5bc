package keys_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hallpass/hallpass/keys"
)

// A verifier loads the issuer's published key from its PASERK string (type
// prefix checked) and indexes it by its id, the kid that tokens carry.
func ExampleParsePublicKey() {
	pk, err := keys.ParsePublicKey("k4.public.cHFyc3R1dnd4eXp7fH1-f4CBgoOEhYaHiImKi4yNjo8")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(pk.ID())

	// A key of another type is refused, whatever its bytes.
	_, err = keys.ParsePublicKey("k4.local.cHFyc3R1dnd4eXp7fH1-f4CBgoOEhYaHiImKi4yNjo8")
	fmt.Println(errors.Is(err, keys.ErrWrongType))
	// Output:
	// k4.pid.9ShR3xc8-qVJ_di0tc9nx0IDIqbatdeM2mqLFBJsKRHs
	// true
}

// An issuer stores its signing key wrapped under a 32-byte wrapping key kept
// apart from the key ring (environment or a separate file).
func ExampleWrapSecretPIE() {
	sk, err := keys.ParseSecretKey("k4.secret.cHFyc3R1dnd4eXp7fH1-f4CBgoOEhYaHiImKi4yNjo8c5WpIyC_5kWKhS8VEYSZ05dYfuTF-ZdQFV4D9vLTcNQ")
	if err != nil {
		fmt.Println(err)
		return
	}
	wk, err := keys.GenerateWrappingKey(nil)
	if err != nil {
		fmt.Println(err)
		return
	}

	stored, err := keys.WrapSecretPIE(sk, wk, nil) // random nonce: differs every time
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.HasPrefix(stored, "k4.secret-wrap.pie."))

	loaded, err := keys.UnwrapSecretPIE(stored, wk)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(loaded.Equal(sk))
	fmt.Println(loaded) // only the kid, never the key

	other, _ := keys.GenerateWrappingKey(nil)
	_, err = keys.UnwrapSecretPIE(stored, other)
	fmt.Println(err)
	// Output:
	// true
	// true
	// keys.SecretKey(k4.pid.mCv5F34c3ALB7hzKEOQUsEBpj3CTArhbJzGyeeCCKWn1)
	// keys: cannot unwrap key
}

// A symmetric refresh-token key stored under a passphrase. Unwrapping
// refuses stored Argon2 costs beyond the limits before hashing anything.
func ExampleWrapLocalPassword() {
	lk, err := keys.GenerateLocalKey(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	pass := []byte("a long random passphrase from the operator")

	stored, err := keys.WrapLocalPassword(lk, pass, keys.DefaultArgon2Params, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	loaded, err := keys.UnwrapLocalPassword(stored, pass, keys.DefaultArgon2Limits)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(loaded.Equal(lk), loaded.ID() == lk.ID())

	_, err = keys.UnwrapLocalPassword(stored, pass, keys.Argon2Limits{MaxMemory: 16 << 20, MaxTime: 3, MaxParallelism: 1})
	fmt.Println(err)
	// Output:
	// true true
	// keys: password hashing parameters out of bounds
}
