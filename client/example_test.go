package client_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/hallpass/hallpass/client"
	"github.com/hallpass/hallpass/keys"
)

// exampleTB lets the examples run the fake API outside a test.
type exampleTB struct{ cleanups []func() }

func (*exampleTB) Helper()                        {}
func (*exampleTB) Fatal(args ...any)              { panic(fmt.Sprint(args...)) }
func (*exampleTB) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
func (*exampleTB) Error(args ...any)              { panic(fmt.Sprint(args...)) }
func (*exampleTB) Errorf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
func (e *exampleTB) Cleanup(f func())             { e.cleanups = append(e.cleanups, f) }
func (e *exampleTB) TempDir() string {
	dir, err := os.MkdirTemp("", "hallpass-example-")
	if err != nil {
		panic(err)
	}
	e.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
func (e *exampleTB) close() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}

// exampleServer starts a stand-in for `hallpass serve`.
func exampleServer() (url string, stop func()) {
	tb := &exampleTB{}
	return newFakeAPI(tb, nil).URL, tb.close
}

// First launch: make a device key, sign up, call the API. The client
// refreshes the access token by itself when it nears expiry.
func Example() {
	serverURL, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	// On a phone: a non-exportable P-256 key in the Secure Enclave or
	// Android Keystore, behind crypto.Signer.
	key, err := client.GenerateDeviceKey(client.ES256)
	if err != nil {
		panic(err)
	}
	c, err := client.New(serverURL, key, &client.MemoryStore{})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	s, err := c.Signup(ctx, "alice", "Alice's phone")
	if err != nil {
		panic(err)
	}
	me, err := c.Me(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(me.Username, me.AccountID == s.AccountID)
	// Output: alice true
}

// Calling an endpoint the package has no method for: CallJSON (or
// NewRequest and Do) adds the DPoP token and proof.
func ExampleClient_CallJSON() {
	serverURL, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	key, _ := client.GenerateDeviceKey(client.EdDSA)
	c, _ := client.New(serverURL, key, &client.MemoryStore{})
	defer c.Close()
	if _, err := c.Signup(ctx, "bob", ""); err != nil {
		panic(err)
	}

	var me struct {
		Username string `json:"username"`
	}
	if err := c.CallJSON(ctx, http.MethodGet, "/v1/me", nil, &me); err != nil {
		panic(err)
	}
	fmt.Println(me.Username)

	// Server errors carry a stable code.
	err := c.CallJSON(ctx, http.MethodGet, "/v1/no-such-thing", nil, nil)
	fmt.Println(client.ErrorCode(err) == "", err)
	// Output:
	// bob
	// true client: server answered http_404 (HTTP 404)
}

// A command-line tool keeps its state, device key included, in an
// encrypted file and picks it up again on the next run with Open.
func ExampleFileStore() {
	serverURL, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "hallpass-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state.json")
	// A 32-byte wrapping key, kept apart from the state file (here in
	// memory); client.PassphraseProtection derives one with Argon2id.
	wk, err := keys.GenerateWrappingKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	prot, err := client.WrapKeyProtection(wk)
	if err != nil {
		panic(err)
	}

	// First run: sign up.
	store, _ := client.NewFileStore(path, prot)
	key, _ := client.GenerateDeviceKey(client.ES256)
	c, _ := client.New(serverURL, key, store)
	if _, err := c.Signup(ctx, "carol", "laptop"); err != nil {
		panic(err)
	}
	c.Close()

	// Next run: the key, server URL and tokens come from the file.
	store, _ = client.NewFileStore(path, prot)
	c, err = client.Open(ctx, store)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	me, err := c.Me(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(me.Username)
	// Output: carol
}
