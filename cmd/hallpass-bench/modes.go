package main

// What every mode of run (the issuer benchmark, -propagation, -memory,
// -gateway) shares: recognising the mode, parsing its flags, and the tail
// of a run (a report as a table or JSON, and the exit code: 0, 1 when the
// run failed, 2 for bad flags).

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// isMode reports whether args select the mode -name (as -name, --name,
// -name=true or --name=true).
func isMode(args []string, name string) bool {
	for _, a := range args {
		switch a {
		case "-" + name, "--" + name, "-" + name + "=true", "--" + name + "=true":
			return true
		}
	}
	return false
}

// modeFlagSet is the flag set of the mode -name, writing its usage to
// stderr, with -name itself among its flags.
func modeFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("hallpass-bench -"+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Bool(name, false, usage)
	return fs
}

// parseArgs parses args into fs, which takes no positional arguments.
func parseArgs(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return nil
}

// loadWindows checks the flags of a benchmark held against its floor: -c
// clients, -d load, -rounds, -floor window per round. It returns the floor
// window: -floor, or by default -d/-rounds, at most maxDefault.
func loadWindows(clients int, load time.Duration, rounds int, floor, maxDefault time.Duration) (time.Duration, error) {
	switch {
	case clients < 1 || clients > 1024:
		return 0, errors.New("-c must be from 1 to 1024")
	case load <= 0 || load > 10*time.Minute:
		return 0, errors.New("-d must be positive and at most 10m")
	case rounds < 1 || rounds > 100:
		return 0, errors.New("-rounds must be from 1 to 100")
	case floor < 0 || floor > 10*time.Second:
		return 0, errors.New("-floor must be from 0 (default) to 10s")
	case floor == 0:
		return min(load/time.Duration(rounds), maxDefault), nil
	}
	return floor, nil
}

// flagsExit is the exit code for an error from a mode's flags: 0 for -h,
// else 2, after saying why on stderr.
func flagsExit(stderr io.Writer, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "hallpass-bench:", err)
	return 2
}

// failed says why a run failed on stderr and returns its exit code, 1.
func failed(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "hallpass-bench:", err)
	return 1
}

// report writes a run's report rep to stdout, as indented JSON or with
// printTable, and returns the exit code: 1 when it cannot be written or
// runFailed (a request, a revocation... failed), else 0.
func report(stdout, stderr io.Writer, asJSON bool, rep any, printTable func(io.Writer), runFailed bool) int {
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return failed(stderr, err)
		}
	} else {
		printTable(stdout)
	}
	if runFailed {
		return 1
	}
	return 0
}
