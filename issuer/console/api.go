package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// maxAPIAnswer bounds what the console reads of an admin API answer (the
// largest is 1000 audit records).
const maxAPIAnswer = 4 << 20

// apiAnswer is an admin API answer as the console reads it.
type apiAnswer struct {
	status     int
	body       []byte
	code       string // the problem code of an error answer
	requestID  string // the admin call's request id, to find its audit record
	retryAfter string // of a 429
}

func (a apiAnswer) ok() bool { return a.status >= 200 && a.status < 300 }

// decode reads a successful answer's JSON into v.
func (a apiAnswer) decode(v any) error {
	if err := json.Unmarshal(a.body, v); err != nil {
		return errors.New("console: the admin API answered JSON the console cannot read")
	}
	return nil
}

// recorder is a bounded in-memory http.ResponseWriter.
type recorder struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.buf.Len()+len(b) > maxAPIAnswer {
		return 0, errors.New("console: admin API answer too large")
	}
	return r.buf.Write(b)
}

// call makes one request to h in process, on behalf of the browser
// request r: same context, same client address (and X-Forwarded-For, which
// the issuer reads only from its trusted proxies), so the admin API's
// rate limit of failed keys and its audit record see the browser's
// address. key is sent as the Bearer admin key; "" sends none.
func call(ctx context.Context, h http.Handler, r *http.Request, key, method, path string, body any) apiAnswer {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return apiAnswer{status: http.StatusInternalServerError, code: "internal"}
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://admin.invalid"+path, rd)
	if err != nil {
		return apiAnswer{status: http.StatusInternalServerError, code: "internal"}
	}
	req.RemoteAddr = r.RemoteAddr
	req.Host = r.Host
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		req.Header["X-Forwarded-For"] = append([]string(nil), xff...)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	rec := &recorder{h: http.Header{}}
	h.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	a := apiAnswer{status: rec.status, body: rec.buf.Bytes(), requestID: rec.h.Get("X-Request-Id"),
		retryAfter: rec.h.Get("Retry-After")}
	if !a.ok() {
		var p struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(a.body, &p)
		a.code = p.Code
	}
	return a
}
