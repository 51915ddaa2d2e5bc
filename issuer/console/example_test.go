package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/hallpass/hallpass/issuer/console"
)

// The admin listener's handler: the console under /admin/ in front of the
// admin API. `hallpass serve` passes issuer.Server.AdminHandler and
// issuer.Server.Handler; stand-ins here.
func ExampleMount() {
	adminAPI := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "admin API", http.StatusUnauthorized)
	})
	con, err := console.New(console.Config{Admin: adminAPI, Public: http.NotFoundHandler()})
	if err != nil {
		panic(err)
	}
	h := console.Mount(con, adminAPI)
	for _, path := range []string{"/admin/login", "/admin/", "/v1/admin/whoami"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Println(path, rec.Code, rec.Header().Get("Location") != "")
	}
	// Output:
	// /admin/login 200 false
	// /admin/ 303 true
	// /v1/admin/whoami 401 false
}
