// Command hallpass runs the hallpass issuer and its admin tools.
//
// Usage: hallpass <command> [flags]. Run "hallpass help" for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
)

func main() {
	// SIGINT and SIGTERM end ctx: servers shut down gracefully and exit 0,
	// so that Ctrl-C on `make run` is not reported as a failure.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, the default action comes back: a second
	// SIGINT or SIGTERM ends the process at once, mid-shutdown.
	go func() { <-ctx.Done(); stop() }()
	err := run(ctx, os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(exitStatus(os.Stderr, err))
}

// exitStatus prints err on stderr (unless the command already printed its
// one line) and returns the process's exit status: 0 without an error,
// exitError's code, else 1.
func exitStatus(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		if !ee.silent {
			fmt.Fprintln(stderr, "hallpass:", err)
		}
		if ee.code != 0 {
			return ee.code
		}
		return 1
	}
	fmt.Fprintln(stderr, "hallpass:", err)
	return 1
}

// env is what a command may touch of the outside world; tests replace it.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// exitError carries a non-zero exit code; silent means the command already
// printed its one line to stderr.
type exitError struct {
	code   int
	silent bool
	err    error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// errUsage marks a bad command line.
var errUsage = errors.New("usage error")

// groups are the commands with subcommands, in the order of the help.
func groups() []group {
	return []group{keysGroup(), tokenGroup(), clientGroup(), adminKeyGroup(), adminGroup(), usernamesGroup()}
}

// run runs the command args names. -h and --help anywhere a command reads
// its flags print its help and succeed.
func run(ctx context.Context, args []string, e *env) error {
	err := dispatch(ctx, args, e)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, e *env) error {
	if len(args) == 0 {
		printUsage(e.stderr)
		return fmt.Errorf("%w: give a command", errUsage)
	}
	switch args[0] {
	case "help", "-h", "--help", "-help":
		printUsage(e.stdout)
		return nil
	case "serve":
		return runServe(ctx, args[1:], e)
	case "gateway":
		return runGateway(ctx, args[1:], e)
	case "health":
		return runHealth(ctx, args[1:], e)
	}
	for _, g := range groups() {
		if g.name == args[0] {
			return runGroup(ctx, g, args[1:], e)
		}
	}
	printUsage(e.stderr)
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}

// printUsage lists every command with its summary.
func printUsage(w io.Writer) {
	fmt.Fprint(w, "hallpass: no-signup device-bound login.\n\nUsage: hallpass <command> [flags]\n\nCommands:\n")
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	for _, d := range []cmdDoc{serveDoc, gatewayDoc, healthDoc} {
		fmt.Fprintf(tw, "  %s\t%s\n", d.name, d.summary)
	}
	for _, g := range groups() {
		for _, c := range g.cmds {
			fmt.Fprintf(tw, "  %s\t%s\n", c.doc.name, c.doc.summary)
		}
	}
	tw.Flush()
	fmt.Fprint(w, "\nRun \"hallpass <command> -h\" for the flags and examples of a command.\n")
}
