package issuer_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hallpass/hallpass/issuer"
)

// TestLinkRetryAfterLostAnswer: the answer to a link is lost (the server
// used the code and added the device, the client never saw the tokens).
// The same code with the same device key, while nothing happened since,
// gets that device with a fresh first pair whose refresh token works, and
// no second device; anything else is invalid_link_code, the answer of a
// used code.
func TestLinkRetryAfterLostAnswer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		tests := []struct {
			name string
			// between runs after the lost answer; it returns who retries.
			between func(phone, tablet *device, lost resp) *device
			ok      bool
		}{
			{"same key", func(_, tablet *device, _ resp) *device { return tablet }, true},
			{"same key at the last second", func(_, tablet *device, _ resp) *device {
				e.clock.Advance(issuer.DefaultLinkCodeTTL - 2*time.Second)
				return tablet
			}, true},
			{"another key", func(*device, *device, resp) *device { return e.newDevice("EdDSA") }, false},
			{"after the first pair refreshed", func(_, tablet *device, lost resp) *device {
				tablet.keep(lost)
				tablet.refresh()
				return tablet
			}, false},
			{"after the code's lifetime", func(_, tablet *device, _ resp) *device {
				e.clock.Advance(issuer.DefaultLinkCodeTTL)
				return tablet
			}, false},
			{"after the new device signed out", func(_, tablet *device, lost resp) *device {
				tablet.keep(lost)
				tablet.logout()
				return tablet
			}, false},
			{"after the maker signed out", func(phone, tablet *device, _ resp) *device {
				if r := phone.logout(); r.status != http.StatusNoContent {
					t.Fatalf("logout: %d", r.status)
				}
				return tablet
			}, false},
		}
		for i, tc := range tests {
			phone := e.newDevice("ES256")
			phone.signup(fmt.Sprintf("lostlink%d", i))
			code := phone.linkCode()
			tablet := e.newDevice("EdDSA")
			lost := tablet.link(code)
			if lost.status != http.StatusCreated {
				t.Fatalf("%s: first link: %d %s", tc.name, lost.status, lost.body)
			}
			who := tc.between(phone, tablet, lost)
			r := who.link(code)
			if !tc.ok {
				if r.status != http.StatusBadRequest || r.code(t) != issuer.CodeInvalidLinkCode {
					t.Fatalf("%s: retry: %d %s; want invalid_link_code", tc.name, r.status, r.body)
				}
				continue
			}
			who.keep(r)
			if who.devID != lost.str(t, "device_id") || who.accID != phone.accID {
				t.Fatalf("%s: retry joined %s as %s; want %s", tc.name, who.accID, who.devID, lost.str(t, "device_id"))
			}
			who.refresh()
			if devs, _ := phone.devices().json(t)["devices"].([]any); len(devs) != 2 {
				t.Fatalf("%s: devices after the retry: %v", tc.name, devs)
			}
		}
	})
}
