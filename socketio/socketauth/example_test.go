package socketauth_test

import (
	"fmt"
	"net/http"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/socketio/socketauth"
	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

// A socket.io server whose default namespace accepts only hallpass clients.
// Clients send io(url, {auth: (cb) => cb({token, proof})}) with a proof for
// GET https://chat.example.com/socket.io/.
func ExampleGuard_Attach() {
	// The issuer's public key; a real server gets its key set from the
	// issuer (verifier.ParseKeySet of /.well-known/hallpass/keys).
	signingKey, _ := keys.GenerateSecretKey(nil)
	ks, _ := verifier.NewStaticKeySet(signingKey.PublicKey())
	v, _ := verifier.New(ks, "https://id.example.com", "chat.example.com")
	auth, _ := httpauth.New(httpauth.Config{Verifier: v, PublicURL: "https://chat.example.com"})

	guard, err := socketauth.New(auth, "/socket.io/", socketauth.Options{})
	if err != nil {
		panic(err)
	}
	defer guard.Close()

	io := socket.NewServer(nil, nil)
	defer io.Close(nil)
	nsp := io.Of("/", nil)
	if err := guard.Attach(nsp); err != nil { // before the connection handlers
		panic(err)
	}
	_ = nsp.On("connection", func(args ...any) {
		s := args[0].(*socket.Socket)
		c, _ := guard.Claims(s)
		_ = s.Emit("hello", c.Subject)
	})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", io.ServeHandler(nil)) // serve mux with http.Server, TLS in production

	fmt.Println("watching", guard.Len(), "sockets")
	// Output: watching 0 sockets
}
