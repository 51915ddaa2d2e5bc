package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// decode reads one whole document into the values encoding/json produces
// with UseNumber, so the two can be compared.
func decode(data []byte, maxDepth, maxMembers int) (any, error) {
	r := NewReader(data, maxDepth, maxMembers)
	v, err := r.value()
	if err != nil {
		return nil, err
	}
	return v, r.End()
}

func (r *Reader) value() (any, error) {
	switch r.Kind() {
	case KindString:
		s, err := r.ReadString()
		return string(s), err
	case KindNumber:
		n, err := r.ReadNumber()
		return json.Number(n), err
	case KindBool, KindNull:
		k, v, err := r.ReadLiteral()
		if k == KindNull {
			return nil, err
		}
		return v, err
	case KindObject:
		var o Object
		if err := r.OpenObject(&o); err != nil {
			return nil, err
		}
		m := map[string]any{}
		for {
			name, ok, err := r.Next(&o)
			if err != nil {
				return nil, err
			}
			if !ok {
				return m, nil
			}
			key := string(name)
			if m[key], err = r.value(); err != nil {
				return nil, err
			}
		}
	case KindArray:
		// Arrays are read with Skip, then re-read element by element.
		start := r.pos
		if err := r.Skip(); err != nil {
			return nil, err
		}
		var a []any
		sub := NewReader(r.data[start+1:r.pos-1], r.maxDepth-r.depth-1, r.maxMembers)
		for sub.Kind() != 0 {
			v, err := sub.value()
			if err != nil {
				return nil, err
			}
			a = append(a, v)
			if sub.Kind() == 0 && sub.pos < len(sub.data) && sub.data[sub.pos] == ',' {
				sub.pos++
			}
		}
		if a == nil {
			a = []any{}
		}
		return a, nil
	}
	return nil, ErrSyntax
}

func TestReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error // nil: accepted
	}{
		{name: "empty object", in: `{}`},
		{name: "whitespace", in: " \t\r\n{ \"a\" : \"b\" , \"c\":1 }\n"},
		{name: "all value kinds", in: `{"s":"x","n":-1.5e+3,"t":true,"f":false,"z":null,"o":{"p":[1,[2,{}],"q"]},"a":[]}`},
		{name: "escapes", in: `{"s":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}`},
		{name: "numbers", in: `{"a":0,"b":-0,"c":0.5,"d":1E9,"e":1e-9,"f":123}`},
		{name: "top-level array", in: `[1,"a",{}]`},
		{name: "top-level string", in: `"x"`},
		{name: "names differing in case are distinct", in: `{"a":1,"A":2}`},
		{name: "same name in sibling objects", in: `{"o":{"k":1},"p":{"k":1}}`},
		{name: "many members", in: members(40)},

		{name: "duplicate", in: `{"a":1,"a":2}`, want: ErrDuplicate},
		{name: "duplicate after escape", in: `{"a":1,"\u0061":2}`, want: ErrDuplicate},
		{name: "duplicate both escaped", in: `{"\u0061":1,"\u0061":2}`, want: ErrDuplicate},
		{name: "duplicate nested", in: `{"o":{"k":1,"k":1}}`, want: ErrDuplicate},
		{name: "duplicate in array element", in: `{"a":[{"k":1,"k":2}]}`, want: ErrDuplicate},
		{name: "duplicate past the small set", in: members(20)[:len(members(20))-1] + `,"m":1}`, want: ErrDuplicate},

		{name: "empty", in: ``, want: ErrSyntax},
		{name: "trailing object", in: `{}{}`, want: ErrSyntax},
		{name: "trailing garbage", in: `{} x`, want: ErrSyntax},
		{name: "leading comma", in: `{,"a":1}`, want: ErrSyntax},
		{name: "trailing comma", in: `{"a":1,}`, want: ErrSyntax},
		{name: "missing comma", in: `{"a":1 "b":2}`, want: ErrSyntax},
		{name: "trailing comma in array", in: `{"a":[1,]}`, want: ErrSyntax},
		{name: "missing colon", in: `{"a" 1}`, want: ErrSyntax},
		{name: "single quotes", in: `{'a':1}`, want: ErrSyntax},
		{name: "unquoted name", in: `{a:1}`, want: ErrSyntax},
		{name: "leading zero", in: `{"a":01}`, want: ErrSyntax},
		{name: "plus sign", in: `{"a":+1}`, want: ErrSyntax},
		{name: "bare dot", in: `{"a":1.}`, want: ErrSyntax},
		{name: "bare exponent", in: `{"a":1e}`, want: ErrSyntax},
		{name: "NaN", in: `{"a":NaN}`, want: ErrSyntax},
		{name: "truncated literal", in: `{"a":tru}`, want: ErrSyntax},
		{name: "control char in string", in: "{\"a\":\"x\ny\"}", want: ErrSyntax},
		{name: "bad escape", in: `{"a":"\x"}`, want: ErrSyntax},
		{name: "short unicode escape", in: `{"a":"\u12"}`, want: ErrSyntax},
		{name: "high surrogate then bad escape", in: `{"a":"\ud800\uzzzz"}`, want: ErrSyntax},
		{name: "unterminated string", in: `{"a":"x`, want: ErrSyntax},
		{name: "unterminated object", in: `{"a":1`, want: ErrSyntax},

		{name: "lone high surrogate", in: `{"a":"\ud800"}`, want: ErrUTF8},
		{name: "lone low surrogate", in: `{"a":"\udc00"}`, want: ErrUTF8},
		{name: "reversed surrogates", in: `{"a":"\udc00\ud800"}`, want: ErrUTF8},
		{name: "high surrogate then BMP", in: `{"a":"\ud800\u0041"}`, want: ErrUTF8},
		{name: "invalid UTF-8", in: "{\"a\":\"\xff\"}", want: ErrUTF8},
		{name: "invalid UTF-8 with escape", in: "{\"a\":\"\\n\xc3\"}", want: ErrUTF8},
		{name: "invalid UTF-8 in name", in: "{\"\xc3\":1}", want: ErrUTF8},
		{name: "UTF-8 surrogate", in: "{\"a\":\"\xed\xa0\x80\"}", want: ErrUTF8},

		{name: "too deep", in: `{"a":` + strings.Repeat("[", 8) + strings.Repeat("]", 8) + `}`, want: ErrDepth},
		{name: "too deep objects", in: strings.Repeat(`{"a":`, 9) + `1` + strings.Repeat(`}`, 9), want: ErrDepth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode([]byte(tt.in), 8, 0)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				checkAgainstStdlib(t, []byte(tt.in), got)
				return
			}
			if err != tt.want {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestReaderLimits(t *testing.T) {
	at := strings.Repeat(`{"a":`, 8) + `1` + strings.Repeat(`}`, 8)
	if _, err := decode([]byte(at), 8, 0); err != nil {
		t.Errorf("depth 8 with limit 8: %v", err)
	}
	if _, err := decode([]byte(members(32)), 8, 32); err != nil {
		t.Errorf("32 members with limit 32: %v", err)
	}
	if _, err := decode([]byte(members(33)), 8, 32); err != ErrTooMany {
		t.Errorf("33 members with limit 32: %v, want ErrTooMany", err)
	}
	// A duplicate is reported as such even past the member limit.
	if _, err := decode([]byte(members(32)[:len(members(32))-1]+`,"m":1}`), 8, 32); err != ErrDuplicate {
		t.Errorf("duplicate as member 33: %v, want ErrDuplicate", err)
	}
}

func TestRawValue(t *testing.T) {
	r := NewReader([]byte(`{"jwk": {"kty":"OKP","x":[1, 2]} ,"b":1}`), 3, 0)
	var o Object
	if err := r.OpenObject(&o); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Next(&o); err != nil {
		t.Fatal(err)
	}
	raw, err := r.RawValue()
	if err != nil || string(raw) != `{"kty":"OKP","x":[1, 2]}` {
		t.Fatalf("RawValue = %q, %v", raw, err)
	}
	// Read again under the limit left at this depth: 2 more levels.
	if _, err := decode(raw, 3-r.Depth(), 0); err != nil {
		t.Fatalf("re-read: %v", err)
	}
	if _, err := decode(raw, 1, 0); err != ErrDepth {
		t.Fatalf("re-read under a lower limit: %v, want ErrDepth", err)
	}
}

func members(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"m` + strings.Repeat("x", i) + `":1`)
	}
	b.WriteByte('}')
	return b.String()
}

// checkAgainstStdlib fails unless encoding/json accepts data and reads it as
// got.
func checkAgainstStdlib(t *testing.T, data []byte, got any) {
	t.Helper()
	if !json.Valid(data) {
		t.Fatalf("accepted JSON that encoding/json calls invalid: %q", data)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var want any
	if err := d.Decode(&want); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("we read %#v, encoding/json %#v", got, want)
	}
}

// FuzzReader checks the reader against encoding/json: what it accepts is
// valid JSON that encoding/json reads as the same value, and what it calls a
// syntax error encoding/json refuses too (the other refusals are its
// stricter rules). Seeds: testdata/fuzz/FuzzReader.
func FuzzReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, maxMembers uint8) {
		got, err := decode(data, 8, int(maxMembers%40))
		switch {
		case err == nil:
			checkAgainstStdlib(t, data, got)
		case err == ErrSyntax:
			if json.Valid(data) {
				t.Fatalf("syntax error on JSON encoding/json calls valid: %q", data)
			}
		case errors.Is(err, ErrUTF8), err == ErrDuplicate, err == ErrDepth, err == ErrTooMany:
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	})
}
