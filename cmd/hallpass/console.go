package main

import (
	"log/slog"
	"net/http"

	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/issuer/console"
)

// withConsole mounts the admin console (issuer/console) under /admin/ in
// front of rest, the admin listener's other routes. The console calls
// srv's admin API in process, so its actions are audited and rate limited
// as the API's.
func withConsole(srv *issuer.Server, rest http.Handler, log *slog.Logger) (http.Handler, error) {
	con, err := console.New(console.Config{Admin: srv.AdminHandler(), Public: srv.Handler(), Logger: log})
	if err != nil {
		return nil, err
	}
	log.Info("admin console served on the admin listener", slog.String("path", console.Prefix))
	return console.Mount(con, rest), nil
}
