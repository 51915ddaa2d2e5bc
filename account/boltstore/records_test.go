package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
)

var (
	recT0   = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600))
	recAcc  = account.Account{ID: "acc_AAAAAAAAAAAAAAAAAAAAAA", Username: "Ålice", UsernameKey: "ålice", Created: recT0, Banned: true, RecoverySalt: []byte("salt"), RecoveryCodes: [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)}}
	recDev  = account.Device{ID: "dev_BBBBBBBBBBBBBBBBBBBBBB", AccountID: recAcc.ID, Name: "phone", JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", Created: recT0, LastUsed: recT0.Add(time.Hour), Revoked: recT0.Add(2 * time.Hour)}
	recSess = account.Session{DeviceID: recDev.ID, AccountID: recAcc.ID, JKT: recDev.JKT, Counter: 1 << 40, Created: recT0, LastUsed: recT0.Add(time.Minute),
		Expires: recT0.Add(90 * 24 * time.Hour), GraceUntil: recT0.Add(time.Minute + 30*time.Second), Successor: bytes.Repeat([]byte{0, 0xff}, 150)}
)

func sameAccount(a, b account.Account) bool {
	return a.ID == b.ID && a.Username == b.Username && a.UsernameKey == b.UsernameKey && a.Created.Equal(b.Created) &&
		a.Banned == b.Banned && bytes.Equal(a.RecoverySalt, b.RecoverySalt) && slices.EqualFunc(a.RecoveryCodes, b.RecoveryCodes, bytes.Equal)
}

func sameDevice(a, b account.Device) bool {
	return a.ID == b.ID && a.AccountID == b.AccountID && a.Name == b.Name && a.JKT == b.JKT &&
		a.Created.Equal(b.Created) && a.LastUsed.Equal(b.LastUsed) && a.Revoked.Equal(b.Revoked) && a.Revoked.IsZero() == b.Revoked.IsZero()
}

func sameSession(a, b account.Session) bool {
	return a.DeviceID == b.DeviceID && a.AccountID == b.AccountID && a.JKT == b.JKT && a.Counter == b.Counter &&
		a.Created.Equal(b.Created) && a.LastUsed.Equal(b.LastUsed) && a.Expires.Equal(b.Expires) &&
		a.GraceUntil.Equal(b.GraceUntil) && a.GraceUntil.IsZero() == b.GraceUntil.IsZero() &&
		bytes.Equal(a.Successor, b.Successor) && bytes.Equal(a.RetryDigest, b.RetryDigest) &&
		a.Ended.Equal(b.Ended) && a.Ended.IsZero() == b.Ended.IsZero()
}

func TestRecordRoundTrip(t *testing.T) {
	ended := recSess
	ended.Ended, ended.Successor, ended.GraceUntil = recT0.Add(time.Hour), nil, time.Time{}
	farDev := recDev
	farDev.Created = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	farDev.LastUsed = time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC) // a nanosecond after the zero time
	farDev.Revoked = time.Time{}
	bare := account.Account{ID: recAcc.ID, Username: "b", UsernameKey: "b", Created: recT0}

	for _, a := range []account.Account{recAcc, bare} {
		got, err := decodeAccount(encodeAccount(a))
		if err != nil || !sameAccount(got, a) || (got.RecoverySalt == nil) != (a.RecoverySalt == nil) || (got.RecoveryCodes == nil) != (a.RecoveryCodes == nil) {
			t.Errorf("account round trip:\n got %+v, %v\nwant %+v", got, err, a)
		}
	}
	for _, d := range []account.Device{recDev, farDev} {
		got, err := decodeDevice(encodeDevice(d))
		if err != nil || !sameDevice(got, d) {
			t.Errorf("device round trip:\n got %+v, %v\nwant %+v", got, err, d)
		}
	}
	for _, s := range []account.Session{recSess, ended} {
		got, err := decodeSession(encodeSession(s))
		if err != nil || !sameSession(got, s) {
			t.Errorf("session round trip:\n got %+v, %v\nwant %+v", got, err, s)
		}
	}
}

// A session record in format 1, as the store wrote it before retry ids
// (byte for byte: the format byte, the fields, the successor last), still
// reads, with no retry digest, and the store still writes it so (the
// digest goes to its own bucket: putSession), byte for byte, so that a
// binary from before retry ids reads it after a rollback. Format 2, which
// the first binaries with retry ids wrote, reads with its digest.
func TestRecordSessionV1(t *testing.T) {
	b := []byte{formatV1}
	for _, s := range []string{recSess.DeviceID, recSess.AccountID, recSess.JKT} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, recSess.Counter)
	for _, tm := range []time.Time{recSess.Created, recSess.LastUsed, recSess.Expires, recSess.GraceUntil, recSess.Ended} {
		b = appendTime(b, tm)
	}
	b = appendBytes(b, recSess.Successor)

	got, err := decodeSession(b)
	if err != nil || !sameSession(got, recSess) || got.RetryDigest != nil {
		t.Fatalf("format 1 session:\n got %+v, %v\nwant %+v", got, err, recSess)
	}
	withDigest := got
	withDigest.RetryDigest = bytes.Repeat([]byte{7}, account.RetryDigestSize)
	if again := encodeSession(withDigest); !bytes.Equal(again, b) {
		t.Fatalf("session written as %x, want format 1 %x", again, b)
	}
	v2 := appendBytes(append([]byte{formatSessionV2}, b[1:]...), withDigest.RetryDigest)
	if got, err := decodeSession(v2); err != nil || !sameSession(got, withDigest) {
		t.Fatalf("format 2 session:\n got %+v, %v\nwant %+v", got, err, withDigest)
	}
	// Format 1 has no digest field: one more byte string is a trailing
	// byte there, not a digest.
	if _, err := decodeSession(appendBytes(bytes.Clone(b), bytes.Repeat([]byte{7}, account.RetryDigestSize))); !errors.Is(err, errCorrupt) {
		t.Fatalf("format 1 session with a digest: %v, want errCorrupt", err)
	}
	// Accounts and devices have no format 2.
	if _, err := decodeDevice(append([]byte{formatSessionV2}, encodeDevice(recDev)[1:]...)); !errors.Is(err, errCorrupt) {
		t.Fatalf("device in format 2: %v, want errCorrupt", err)
	}
}

// The JSON written by the store before the binary format, byte for byte
// as json.Marshal wrote it (the field names are those of the account
// package's json tags), still decodes.
func TestRecordLegacyJSON(t *testing.T) {
	rawAcc := `{"id":"acc_AAAAAAAAAAAAAAAAAAAAAA","username":"Ålice","username_key":"ålice","created":"2030-01-02T03:04:05.123456789+01:00","banned":true,"recovery_salt":"c2FsdA==","recovery_codes":["AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="]}`
	rawDev := `{"id":"dev_BBBBBBBBBBBBBBBBBBBBBB","account_id":"acc_AAAAAAAAAAAAAAAAAAAAAA","name":"phone","jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I","created":"2030-01-02T03:04:05.123456789+01:00","last_used":"2030-01-02T04:04:05.123456789+01:00","revoked":"2030-01-02T05:04:05.123456789+01:00"}`
	succ, _ := json.Marshal(recSess.Successor)
	rawSess := `{"device_id":"dev_BBBBBBBBBBBBBBBBBBBBBB","account_id":"acc_AAAAAAAAAAAAAAAAAAAAAA","jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I","counter":1099511627776,"created":"2030-01-02T03:04:05.123456789+01:00","last_used":"2030-01-02T03:05:05.123456789+01:00","expires":"2030-04-02T03:04:05.123456789+01:00","grace_until":"2030-01-02T03:05:35.123456789+01:00","successor":` + string(succ) + `,"ended":"0001-01-01T00:00:00Z"}`

	a, err := decodeAccount([]byte(rawAcc))
	if err != nil || !sameAccount(a, recAcc) {
		t.Errorf("legacy account: %+v, %v", a, err)
	}
	d, err := decodeDevice([]byte(rawDev))
	if err != nil || !sameDevice(d, recDev) {
		t.Errorf("legacy device: %+v, %v", d, err)
	}
	s, err := decodeSession([]byte(rawSess))
	if err != nil || !sameSession(s, recSess) {
		t.Errorf("legacy session: %+v, %v", s, err)
	}
	// And what the old code wrote for the current structs.
	for _, v := range []any{recAcc, recDev, recSess} {
		raw, _ := json.Marshal(v)
		var err error
		switch v := v.(type) {
		case account.Account:
			var got account.Account
			got, err = decodeAccount(raw)
			if err == nil && !sameAccount(got, v) {
				err = errors.New("differs")
			}
		case account.Device:
			var got account.Device
			got, err = decodeDevice(raw)
			if err == nil && !sameDevice(got, v) {
				err = errors.New("differs")
			}
		case account.Session:
			var got account.Session
			got, err = decodeSession(raw)
			if err == nil && !sameSession(got, v) {
				err = errors.New("differs")
			}
		}
		if err != nil {
			t.Errorf("json.Marshal(%T) read back: %v", v, err)
		}
	}
}

// Every truncation, trailing byte, unknown format byte and malformed
// field is errCorrupt, never a panic or a half-filled record.
func TestRecordCorrupt(t *testing.T) {
	decoders := map[string]struct {
		raw    []byte
		decode func([]byte) error
	}{
		"account": {encodeAccount(recAcc), func(b []byte) error { _, err := decodeAccount(b); return err }},
		"device":  {encodeDevice(recDev), func(b []byte) error { _, err := decodeDevice(b); return err }},
		"session": {encodeSession(recSess), func(b []byte) error { _, err := decodeSession(b); return err }},
	}
	for name, d := range decoders {
		for n := range len(d.raw) {
			if err := d.decode(d.raw[:n]); !errors.Is(err, errCorrupt) {
				t.Errorf("%s truncated to %d bytes: %v", name, n, err)
			}
		}
		for _, bad := range [][]byte{
			append(bytes.Clone(d.raw), 0),   // trailing byte
			append([]byte{3}, d.raw[1:]...), // a format this version does not know
			[]byte("{not json"),
		} {
			if err := d.decode(bad); !errors.Is(err, errCorrupt) {
				t.Errorf("%s %q: %v", name, bad, err)
			}
		}
	}
	// Malformed times: a flag other than 0 or 1, nanoseconds out of
	// range, the zero instant spelled as set.
	dev := func(timeField []byte) []byte {
		b := []byte{formatV1}
		for _, s := range []string{recDev.ID, recDev.AccountID, "", recDev.JKT} {
			b = appendString(b, s)
		}
		b = append(b, timeField...)
		return append(b, 0, 0)
	}
	for name, field := range map[string][]byte{
		"flag 2":         {2},
		"nanoseconds":    binary.AppendUvarint([]byte{1, 0}, uint64(time.Second)),
		"zero as set":    append(binary.AppendVarint([]byte{1}, time.Time{}.Unix()), 0),
		"bad varint":     {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"missing nanos":  {1, 0},
		"missing fields": {},
	} {
		if _, err := decodeDevice(dev(field)); !errors.Is(err, errCorrupt) {
			t.Errorf("device with time %s: %v", name, err)
		}
	}
	// A recovery code count larger than the record.
	b := []byte{formatV1}
	for _, s := range []string{recAcc.ID, "a", "a"} {
		b = appendString(b, s)
	}
	b = appendTime(b, recT0)
	b = append(b, 0, 0, 0xff, 0xff, 0x03)
	if _, err := decodeAccount(b); !errors.Is(err, errCorrupt) {
		t.Errorf("account with a huge code count: %v", err)
	}
}

// The decoders never panic, and what they accept encodes to a record that
// decodes to the same value.
func FuzzDecodeSession(f *testing.F) {
	f.Add(encodeSession(recSess))
	f.Add(encodeSession(account.Session{}))
	raw, _ := json.Marshal(recSess)
	f.Add(raw)
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := decodeSession(raw)
		if err != nil {
			return
		}
		again, err := decodeSession(encodeSession(s))
		if err != nil || !sameSession(again, s) {
			t.Fatalf("re-encoded session: %+v, %v; want %+v", again, err, s)
		}
	})
}

func FuzzDecodeDevice(f *testing.F) {
	f.Add(encodeDevice(recDev))
	raw, _ := json.Marshal(recDev)
	f.Add(raw)
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := decodeDevice(raw)
		if err != nil {
			return
		}
		again, err := decodeDevice(encodeDevice(d))
		if err != nil || !sameDevice(again, d) {
			t.Fatalf("re-encoded device: %+v, %v; want %+v", again, err, d)
		}
	})
}

func FuzzDecodeAccount(f *testing.F) {
	f.Add(encodeAccount(recAcc))
	raw, _ := json.Marshal(recAcc)
	f.Add(raw)
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := decodeAccount(raw)
		if err != nil {
			return
		}
		again, err := decodeAccount(encodeAccount(a))
		if err != nil || !sameAccount(again, a) {
			t.Fatalf("re-encoded account: %+v, %v; want %+v", again, err, a)
		}
	})
}

// BenchmarkRecordDecode: what one refresh decodes (its session, device
// and account), in the JSON format of earlier versions and in format 1.
func BenchmarkRecordDecode(b *testing.B) {
	jsonOf := func(v any) []byte { raw, _ := json.Marshal(v); return raw }
	formats := []struct {
		name          string
		sess, dev, ac []byte
	}{
		{"json", jsonOf(recSess), jsonOf(recDev), jsonOf(recAcc)},
		{"binary", encodeSession(recSess), encodeDevice(recDev), encodeAccount(recAcc)},
	}
	for _, f := range formats {
		b.Run("session/"+f.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := decodeSession(f.sess); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(f.sess)), "bytes/record")
		})
		b.Run("device/"+f.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := decodeDevice(f.dev); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(f.dev)), "bytes/record")
		})
		b.Run("account/"+f.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := decodeAccount(f.ac); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(f.ac)), "bytes/record")
		})
	}
}

// BenchmarkRecordEncode: the session and device a refresh writes back.
func BenchmarkRecordEncode(b *testing.B) {
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(recSess); err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(recDev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("binary", func(b *testing.B) {
		for b.Loop() {
			_ = encodeSession(recSess)
			_ = encodeDevice(recDev)
		}
	})
}
