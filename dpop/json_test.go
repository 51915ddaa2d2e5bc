package dpop

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hallpass/hallpass/internal/strictjson"
)

// readAll reads an object as readHeader and readClaims do, collecting
// top-level string members; other values are skipped.
func readAll(data []byte) (map[string]string, error) {
	out := map[string]string{}
	r := newJSONReader(data, 0)
	var obj strictjson.Object
	if err := r.openObject(&obj); err != nil {
		return out, err
	}
	for {
		name, ok, err := r.next(&obj)
		if err != nil {
			return out, err
		}
		if !ok {
			return out, r.end()
		}
		if r.Kind() == strictjson.KindString {
			s, err := r.readString()
			if err != nil {
				return out, err
			}
			out[string(name)] = s
		} else if err := r.skip(); err != nil {
			return out, err
		}
	}
}

// TestReadObject checks this package's rules and error mapping on top of
// internal/strictjson, whose own table covers the JSON grammar case by case.
func TestReadObject(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error // nil: accepted
	}{
		{name: "empty object", in: `{}`},
		{name: "whitespace", in: " \t\r\n{ \"a\" : \"b\" , \"c\":1 }\n"},
		{name: "all value kinds", in: `{"s":"x","n":-1.5e+3,"t":true,"f":false,"z":null,"o":{"p":[1,[2,{}],"q"]},"a":[]}`},
		{name: "escapes", in: `{"s":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}`},
		{name: "names differing in case are distinct", in: `{"a":1,"A":2}`},
		{name: "at the depth limit", in: `{"a":` + strings.Repeat("[", maxJSONDepth-1) + strings.Repeat("]", maxJSONDepth-1) + `}`},

		{name: "duplicate", in: `{"a":1,"a":2}`, want: ErrDuplicateKey},
		{name: "duplicate after escape", in: `{"a":1,"\u0061":2}`, want: ErrDuplicateKey},
		{name: "duplicate in array element", in: `{"a":[{"k":1,"k":2}]}`, want: ErrDuplicateKey},

		{name: "not an object", in: `[]`, want: ErrMalformed},
		{name: "string", in: `"x"`, want: ErrMalformed},
		{name: "empty", in: ``, want: ErrMalformed},
		{name: "trailing object", in: `{}{}`, want: ErrMalformed},
		{name: "trailing comma", in: `{"a":1,}`, want: ErrMalformed},
		{name: "leading zero", in: `{"a":01}`, want: ErrMalformed},
		{name: "lone high surrogate", in: `{"a":"\ud800"}`, want: ErrMalformed},
		{name: "invalid UTF-8", in: "{\"a\":\"\xff\"}", want: ErrMalformed},
		{name: "too deep", in: `{"a":` + strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth) + `}`, want: ErrMalformed},
		{name: "too many members", in: tooManyMembers(), want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAll([]byte(tt.in))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if !json.Valid([]byte(tt.in)) {
					t.Fatal("accepted JSON that encoding/json calls invalid")
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestReadObjectValues(t *testing.T) {
	in := `{"s":"a\u00e9\ud83d\ude00\n","plain":"x y","nested":{"s":"ignored"}}`
	got, err := readAll([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(in), &want); err != nil {
		t.Fatal(err)
	}
	if got["s"] != want["s"] || got["plain"] != want["plain"] || len(got) != 2 {
		t.Fatalf("got %q, encoding/json %q", got, want)
	}
}

func tooManyMembers() string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i <= maxJSONMembers; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"m`)
		b.WriteString(strings.Repeat("x", i))
		b.WriteString(`":1`)
	}
	b.WriteByte('}')
	return b.String()
}
