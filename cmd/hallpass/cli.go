package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// cmdDoc is what `hallpass NAME -h` prints: a usage line, what the command
// does, examples to copy, then the flags.
type cmdDoc struct {
	name     string   // "keys new-wrap-key"
	args     string   // what follows the name in the usage line
	summary  string   // one line, also in the command lists
	detail   string   // optional paragraphs
	examples []string // command lines
}

// command is one subcommand of a group.
type command struct {
	doc cmdDoc
	run func(ctx context.Context, args []string, e *env) error
}

// group is a command with subcommands: keys, token, client, admin-key,
// admin.
type group struct {
	name, summary, detail string
	cmds                  []command
}

// newFlagSet returns the flag set of the command doc describes. -h and
// --help print the whole help on stdout (parseFlags); a bad flag is one
// usage error naming the flag.
func newFlagSet(doc cmdDoc, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet(doc.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parseFlags reports errors, main prints them once
	fs.Usage = func() { printHelp(e.stdout, doc, fs) }
	return fs
}

// parseFlags parses args. On -h or --help it prints the help and returns
// flag.ErrHelp, which run turns into exit status 0.
func parseFlags(fs *flag.FlagSet, args []string) error {
	help := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = help
	if errors.Is(err, flag.ErrHelp) {
		help()
		return err
	}
	if err != nil {
		return fmt.Errorf("%w: %v (run \"hallpass %s -h\" for help)", errUsage, err, fs.Name())
	}
	return nil
}

func (d cmdDoc) usageLine() string {
	s := "Usage: hallpass " + d.name
	if d.args != "" {
		s += " " + d.args
	}
	return s
}

// printHelp writes the usage line, the description, the examples and the
// flags of one command.
func printHelp(w io.Writer, d cmdDoc, fs *flag.FlagSet) {
	fmt.Fprintf(w, "%s\n\n%s.\n", d.usageLine(), upperFirst(d.summary))
	if d.detail != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(d.detail, "\n"))
	}
	fmt.Fprintln(w, "\nExamples:")
	for _, ex := range d.examples {
		fmt.Fprintf(w, "  %s\n", ex)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		fmt.Fprintf(w, "%s\n      %s", line, usage)
		switch f.DefValue {
		case "", "0", "false", "0s":
		default:
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// runGroup runs the subcommand args[0] of g.
func runGroup(ctx context.Context, g group, args []string, e *env) error {
	if len(args) == 0 {
		printGroupHelp(e.stderr, g)
		return fmt.Errorf("%w: hallpass %s needs a command", errUsage, g.name)
	}
	switch args[0] {
	case "help", "-h", "--help", "-help":
		printGroupHelp(e.stdout, g)
		return nil
	}
	for _, c := range g.cmds {
		if c.doc.name == g.name+" "+args[0] {
			return c.run(ctx, args[1:], e)
		}
	}
	printGroupHelp(e.stderr, g)
	return fmt.Errorf("%w: unknown %s command %q", errUsage, g.name, args[0])
}

func printGroupHelp(w io.Writer, g group) {
	fmt.Fprintf(w, "Usage: hallpass %s <command> [flags]\n\n%s.\n", g.name, upperFirst(g.summary))
	if g.detail != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(g.detail, "\n"))
	}
	fmt.Fprintln(w, "\nCommands:")
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	for _, c := range g.cmds {
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimPrefix(c.doc.name, g.name+" "), c.doc.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun \"hallpass %s <command> -h\" for the flags and examples of a command.\n", g.name)
}
