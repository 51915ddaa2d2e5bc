package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/hallpass/hallpass/internal/redislog"
)

// parseServerFlags parses the flags of a server command (serve, gateway),
// which takes no arguments, and reports the HALLPASS_* variables that did
// not parse as a usage error.
func parseServerFlags(fs *flag.FlagSet, args []string, ee *envErr, name string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: %s takes no arguments", errUsage, name)
	}
	if len(ee.errs) > 0 {
		return fmt.Errorf("%w: %s", errUsage, strings.Join(ee.errs, "; "))
	}
	return nil
}

// serverLogTLS checks what every server command reads first: --log-level
// (the JSON logger on e.stderr, which go-redis's own lines go to too),
// --tls-cert and --tls-key (both or neither, loaded here) and --tls-min.
// The TLS config is nil without a certificate.
func serverLogTLS(e *env, logLevel, tlsCert, tlsKey, tlsMin string) (*slog.Logger, *tls.Config, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return nil, nil, fmt.Errorf("%w: --log-level must be debug, info, warn or error", errUsage)
	}
	log := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	// go-redis's own lines (pool, sentinel) too, or they break the JSON log.
	redislog.Install(log)
	if (tlsCert == "") != (tlsKey == "") {
		return nil, nil, fmt.Errorf("%w: give both --tls-cert and --tls-key, or neither", errUsage)
	}
	min, err := parseTLSMin(tlsMin)
	if err != nil || tlsCert == "" {
		return log, nil, err
	}
	conf, err := serverTLSConfig(tlsCert, tlsKey, min)
	return log, conf, err
}

// listenPublic binds addr and, when *publicURL is empty, sets it from the
// bound address, so that --listen :0 works too.
func listenPublic(addr string, publicURL *string, tls bool) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if *publicURL == "" {
		*publicURL = defaultPublicURL(ln.Addr().String(), tls)
	}
	return ln, nil
}
