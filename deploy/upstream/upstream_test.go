package upstream

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestHandler: the identity the gateway set comes back as JSON; a request
// without it did not come through the gateway and is refused.
func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHandler(reg)
	for _, tc := range []struct {
		name    string
		account string
		code    int
	}{
		{"through the gateway", "acc_1", http.StatusOK},
		{"around the gateway", "", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/hello", nil)
			if tc.account != "" {
				req.Header.Set(headerAccount, tc.account)
				req.Header.Set(headerDevice, "dev_1")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("status %d, want %d", rec.Code, tc.code)
			}
			var got map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if tc.account != "" && (got["account"] != "acc_1" || got["device"] != "dev_1" || got["path"] != "/hello") {
				t.Errorf("answer %v", got)
			}
		})
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			counts[mf.GetName()+" "+m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if counts["upstream_requests_total 200"] != 1 || counts["upstream_requests_total 403"] != 1 {
		t.Errorf("counters %v, want one 200 and one 403", counts)
	}
}
