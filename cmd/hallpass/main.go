// Command hallpass runs the hallpass issuer and its admin tools.
//
// Usage: hallpass <command> [flags]. Run "hallpass help" for the list.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	if err != nil {
		var ee exitError
		if !errors.As(err, &ee) || !ee.silent {
			fmt.Fprintln(os.Stderr, "hallpass:", err)
		}
		code := 1
		if errors.As(err, &ee) && ee.code != 0 {
			code = ee.code
		}
		os.Exit(code)
	}
}

// env is what a command may touch of the outside world; tests replace it.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// exitError carries an exit code; silent means the command already printed
// its one line to stderr.
type exitError struct {
	code   int
	silent bool
	err    error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// errUsage marks a bad command line; the usage text was printed.
var errUsage = errors.New("usage error")

const usage = `hallpass: no-signup device-bound login.

Commands:
  serve              run the issuer (make run: serve --dev)
  gateway            verify requests at the edge: reverse proxy and forward-auth endpoint
  keys init          create a key ring (one current, one next key)
  keys rotate        promote next to current, retire current, add a new next key
  keys revoke        withdraw a key at once
  keys list          list the ring's keys (no secret needed)
  keys export-public print the published key set JSON (no secret needed)
  keys new-wrap-key  print a new random 32-byte wrapping key (base64url)
  token mint         mint a v4.public access token (for testing)
  token verify       verify a token offline against a key set
  token inspect      print a token's header, footer and claims UNVERIFIED
  client             try the flow as a device: signup, me, refresh, logout, devices
  admin-key new      make an admin key; its digest goes to the admin keys file
  admin              call the admin API: revoke, ban, revoke-device, rotate-keys, ...

Run "hallpass <command> -h" for the flags of a command.
`

func run(ctx context.Context, args []string, e *env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return errUsage
	}
	sub := args[1:]
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
		return nil
	case "keys":
		return runKeys(ctx, sub, e)
	case "token":
		return runToken(ctx, sub, e)
	case "serve":
		return runServe(ctx, sub, e)
	case "gateway":
		return runGateway(ctx, sub, e)
	case "client":
		return runClient(ctx, sub, e)
	case "admin-key":
		return runAdminKey(ctx, sub, e)
	case "admin":
		return runAdmin(ctx, sub, e)
	}
	fmt.Fprint(e.stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}
