package socketauth

import (
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
)

// Check is the middleware's decision on an auth payload, without a socket.
func (g *Guard) Check(tainted map[string]any) (*token.Claims, keys.KeyID, string, map[string]any) {
	return g.check(tainted, "test")
}

// Register starts watching s with kick in place of the emit-and-disconnect.
func (g *Guard) Register(s *socket.Socket, c *token.Claims, kid keys.KeyID, kick func(string)) string {
	return g.register(s, c, kid, kick)
}

// Admit is the middleware's decision and registration, with kick in place
// of the emit-and-disconnect.
func (g *Guard) Admit(s *socket.Socket, tainted map[string]any, kick func(string)) (string, map[string]any) {
	return g.admit(s, tainted, kick)
}
