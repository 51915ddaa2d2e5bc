package token

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/hallpass/hallpass/keys"
)

func TestNewMinterConfig(t *testing.T) {
	tests := []struct {
		name string
		mut  func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"https with path", func(c *Config) { c.Issuer = "https://auth.example/tenant/a" }, true},
		{"https with port", func(c *Config) { c.Issuer = "https://auth.example:8443" }, true},
		{"http localhost", func(c *Config) { c.Issuer = "http://localhost:8080" }, true},
		{"http 127.0.0.1", func(c *Config) { c.Issuer = "http://127.0.0.1:8080" }, true},
		{"http ::1", func(c *Config) { c.Issuer = "http://[::1]:8080" }, true},
		{"TTL 1m", func(c *Config) { c.TTL = time.Minute }, true},
		{"TTL 60m", func(c *Config) { c.TTL = time.Hour }, true},
		{"unicode audience", func(c *Config) { c.Audience = "api-ü" }, true},

		{"no issuer", func(c *Config) { c.Issuer = "" }, false},
		{"http public host", func(c *Config) { c.Issuer = "http://auth.example" }, false},
		{"http 10.0.0.1", func(c *Config) { c.Issuer = "http://10.0.0.1" }, false},
		{"relative", func(c *Config) { c.Issuer = "/auth" }, false},
		{"no host", func(c *Config) { c.Issuer = "https:///path" }, false},
		{"opaque", func(c *Config) { c.Issuer = "https:auth.example" }, false},
		{"other scheme", func(c *Config) { c.Issuer = "ftp://auth.example" }, false},
		{"user info", func(c *Config) { c.Issuer = "https://u:p@auth.example" }, false},
		{"query", func(c *Config) { c.Issuer = "https://auth.example?a=b" }, false},
		{"empty query", func(c *Config) { c.Issuer = "https://auth.example?" }, false},
		{"fragment", func(c *Config) { c.Issuer = "https://auth.example#x" }, false},
		{"upper-case scheme", func(c *Config) { c.Issuer = "HTTPS://auth.example" }, false},
		{"space", func(c *Config) { c.Issuer = "https://auth.example/ a" }, false},
		{"control", func(c *Config) { c.Issuer = "https://auth.example/\n" }, false},
		{"no audience", func(c *Config) { c.Audience = "" }, false},
		{"audience control", func(c *Config) { c.Audience = "a\x00b" }, false},
		{"audience invalid UTF-8", func(c *Config) { c.Audience = "a\xffb" }, false},
		{"audience too long", func(c *Config) { c.Audience = strings.Repeat("a", 257) }, false},
		{"TTL 59s", func(c *Config) { c.TTL = 59 * time.Second }, false},
		{"TTL 61m", func(c *Config) { c.TTL = 61 * time.Minute }, false},
		{"TTL negative", func(c *Config) { c.TTL = -time.Minute }, false},
		{"TTL fractional", func(c *Config) { c.TTL = 5*time.Minute + time.Millisecond }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Issuer: "https://issuer.example", Audience: "api.example"}
			tt.mut(&cfg)
			m, err := NewMinter(cfg)
			if tt.ok != (err == nil) || (err == nil) != (m != nil) {
				t.Fatalf("NewMinter = %v, %v", m, err)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			if err != nil && cfg.Issuer != "" && strings.Contains(err.Error(), cfg.Issuer) {
				t.Fatalf("error quotes the issuer: %v", err)
			}
		})
	}
	m, err := NewMinter(Config{Issuer: "https://issuer.example", Audience: "api.example"})
	if err != nil || m.ttl != DefaultTTL || m.now == nil || m.rand == nil {
		t.Fatalf("defaults: %+v, %v", m, err)
	}
}

func TestMint(t *testing.T) {
	sk := testSecretKey(t, 7)
	m := testMinter(t, func(c *Config) { c.TTL = 15 * time.Minute })
	tok, c, err := m.Mint(sk, testSubject)
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{
		Issuer:       "https://issuer.example",
		Audience:     "api.example",
		Subject:      "acct_123",
		Device:       "dev_456",
		Confirmation: Confirmation{JKT: testJKT},
		IssuedAt:     testNow,
		NotBefore:    testNow,
		Expiry:       testNow.Add(15 * time.Minute),
		ID:           "AAECAwQFBgcICQoLDA0ODw", // bytes 0..15 from countingReader
	}
	if *c != want {
		t.Errorf("claims = %+v\nwant     %+v", c, want)
	}
	payload, footer, err := VerifyV4Public(sk.PublicKey(), tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(footer); got != `{"kid":"`+string(sk.ID())+`"}` {
		t.Errorf("footer = %s", got)
	}
	if string(payload) != string(want.AppendJSON(nil)) {
		t.Errorf("payload = %s", payload)
	}
	if !strings.Contains(string(payload), `"exp":"2026-03-01T12:15:00Z"`) {
		t.Errorf("payload times: %s", payload)
	}
	parsed, err := ParseClaims(payload)
	if err != nil || *parsed != *c {
		t.Errorf("ParseClaims = %+v, %v", parsed, err)
	}

	t.Run("deterministic given clock and rand", func(t *testing.T) {
		again, _, err := testMinter(t, func(c *Config) { c.TTL = 15 * time.Minute }).Mint(sk, testSubject)
		if err != nil || again != tok {
			t.Errorf("second mint differs: %v", err)
		}
	})
	t.Run("fresh jti per token", func(t *testing.T) {
		_, c2, err := m.Mint(sk, testSubject)
		if err != nil || c2.ID == c.ID {
			t.Errorf("jti reused: %v", err)
		}
	})
	t.Run("clock read per call, truncated to seconds, in UTC", func(t *testing.T) {
		now := testNow
		m := testMinter(t, func(c *Config) { c.Now = func() time.Time { return now } })
		now = time.Date(2026, 3, 1, 14, 0, 0, 999_999_999, time.FixedZone("X", 2*3600))
		_, c, err := m.Mint(sk, testSubject)
		if err != nil {
			t.Fatal(err)
		}
		if want := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC); c.IssuedAt != want || c.NotBefore != want || c.Expiry != want.Add(DefaultTTL) {
			t.Errorf("times = %v %v %v", c.IssuedAt, c.NotBefore, c.Expiry)
		}
	})
}

func TestMintRejects(t *testing.T) {
	sk := testSecretKey(t, 7)
	other := testSecretKey(t, 8)
	var nilKey *keys.SecretKey
	tests := []struct {
		name string
		m    *Minter
		key  SigningKey
		sub  Subject
		want error
	}{
		{"nil key", testMinter(t, nil), nil, testSubject, ErrInvalidKey},
		{"typed nil key", testMinter(t, nil), nilKey, testSubject, ErrInvalidKey},
		{"kid mismatch", testMinter(t, nil), mislabeled{sk, other.ID()}, testSubject, ErrInvalidKey},
		{"not ed25519", testMinter(t, nil), notEd{sk}, testSubject, ErrInvalidKey},
		{"no account", testMinter(t, nil), sk, Subject{Device: "d", JKT: testJKT}, ErrSubject},
		{"no device", testMinter(t, nil), sk, Subject{Account: "a", JKT: testJKT}, ErrSubject},
		{"no jkt", testMinter(t, nil), sk, Subject{Account: "a", Device: "d"}, ErrSubject},
		{"jkt hex", testMinter(t, nil), sk, Subject{Account: "a", Device: "d", JKT: strings.Repeat("ab", 32)}, ErrSubject},
		{"jkt padded", testMinter(t, nil), sk, Subject{Account: "a", Device: "d", JKT: testJKT + "="}, ErrSubject},
		{"account control", testMinter(t, nil), sk, Subject{Account: "a\nb", Device: "d", JKT: testJKT}, ErrSubject},
		{"account invalid UTF-8", testMinter(t, nil), sk, Subject{Account: "\xc3", Device: "d", JKT: testJKT}, ErrSubject},
		{"device too long", testMinter(t, nil), sk, Subject{Account: "a", Device: strings.Repeat("d", 257), JKT: testJKT}, ErrSubject},
		{"broken rand", testMinter(t, func(c *Config) { c.Rand = iotest.ErrReader(io.ErrUnexpectedEOF) }), sk, testSubject, io.ErrUnexpectedEOF},
		{"short rand", testMinter(t, func(c *Config) { c.Rand = strings.NewReader("short") }), sk, testSubject, io.ErrUnexpectedEOF},
		{"clock out of range", testMinter(t, func(c *Config) {
			c.Now = func() time.Time { return time.Date(9999, 12, 31, 23, 59, 0, 0, time.UTC) }
		}), sk, testSubject, ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, c, err := tt.m.Mint(tt.key, tt.sub)
			if !errors.Is(err, tt.want) || tok != "" || c != nil {
				t.Fatalf("Mint = %q, %v, %v; want %v", tok, c, err, tt.want)
			}
		})
	}
}

// mislabeled claims another key's id.
type mislabeled struct {
	*keys.SecretKey
	id keys.KeyID
}

func (m mislabeled) ID() keys.KeyID { return m.id }

// notEd reports a public key of another type.
type notEd struct{ *keys.SecretKey }

func (notEd) Public() crypto.PublicKey { return []byte("not a key") }

var _ SigningKey = (*keys.SecretKey)(nil)

func TestMintKeepsEd25519Size(t *testing.T) {
	// Guard against a signer whose public key is an ed25519.PublicKey of the
	// wrong length.
	m := testMinter(t, nil)
	_, _, err := m.Mint(shortPub{testSecretKey(t, 7)}, testSubject)
	if !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("err = %v", err)
	}
}

type shortPub struct{ *keys.SecretKey }

func (shortPub) Public() crypto.PublicKey { return ed25519.PublicKey{1, 2, 3} }
