package issuer_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hallpass/hallpass/flow"
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
			{"same key near the end of the code's lifetime", func(_, tablet *device, _ resp) *device {
				e.clock.Advance(issuer.DefaultLinkCodeTTL - 30*time.Second)
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

// TestRecoverRetryAfterLostAnswer: the answer to a recovery is lost (the
// server used the code, added the device and signed the others out; the
// client never saw the tokens). The same code with the same device key,
// within the signup retry window and before that device refreshed, gets
// that device with a fresh first pair whose refresh token works, no
// second device, and the retried device is not signed out; anything else
// is invalid_recovery_code.
func TestRecoverRetryAfterLostAnswer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		tests := []struct {
			name    string
			between func(fresh *device, lost resp) *device
			ok      bool
		}{
			{"same key", func(fresh *device, _ resp) *device { return fresh }, true},
			{"same key near the end of the window", func(fresh *device, _ resp) *device {
				e.clock.Advance(flow.SignupRetryWindow - 30*time.Second)
				return fresh
			}, true},
			{"another key", func(*device, resp) *device { return e.newDevice("EdDSA") }, false},
			{"after the first pair refreshed", func(fresh *device, lost resp) *device {
				fresh.keep(lost)
				fresh.refresh()
				return fresh
			}, false},
			{"after the window", func(fresh *device, _ resp) *device {
				e.clock.Advance(flow.SignupRetryWindow + time.Second)
				return fresh
			}, false},
			{"after the new device signed out", func(fresh *device, lost resp) *device {
				fresh.keep(lost)
				fresh.logout()
				return fresh
			}, false},
		}
		for i, tc := range tests {
			name := fmt.Sprintf("lostrecover%d", i)
			phone := e.newDevice("ES256")
			phone.signup(name)
			code := phone.recoveryCodes()[0]
			fresh := e.newDevice("EdDSA")
			lost := fresh.recoverWith(name, code, nil, "")
			if lost.status != http.StatusCreated {
				t.Fatalf("%s: first recovery: %d %s", tc.name, lost.status, lost.body)
			}
			who := tc.between(fresh, lost)
			r := who.recoverWith(name, code, nil, "")
			if !tc.ok {
				if r.status != http.StatusBadRequest || r.code(t) != issuer.CodeInvalidRecoveryCode {
					t.Fatalf("%s: retry: %d %s; want invalid_recovery_code", tc.name, r.status, r.body)
				}
				continue
			}
			if r.status != http.StatusCreated {
				t.Fatalf("%s: retry: %d %s", tc.name, r.status, r.body)
			}
			who.keep(r)
			if who.devID != lost.str(t, "device_id") || who.accID != phone.accID {
				t.Fatalf("%s: retry recovered %s as %s; want %s", tc.name, who.accID, who.devID, lost.str(t, "device_id"))
			}
			who.refresh()
			if r := who.me(); r.status != http.StatusOK {
				t.Fatalf("%s: the retried device was signed out: %d", tc.name, r.status)
			}
			if devs, _ := who.devices().json(t)["devices"].([]any); len(devs) != 2 {
				t.Fatalf("%s: devices after the retry: %v", tc.name, devs)
			}
			if r := phone.me(); r.status != http.StatusUnauthorized {
				t.Fatalf("%s: the old phone after the recovery: %d", tc.name, r.status)
			}
		}
	})
}
