package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// maxCPU bounds the CPU numbers -server-cpus and -load-cpus accept (the
// size of the affinity mask passed to the kernel).
const maxCPU = 1024

// parseCPUList reads a CPU list as taskset -c and /sys/devices/system/cpu
// write it: "1", "0,2", "0-3,6". The result is sorted, without duplicates.
func parseCPUList(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= maxCPU {
			return nil, fmt.Errorf("bad CPU list %q (want e.g. 1 or 0,2-3)", s)
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// formatCPUList is the inverse of parseCPUList, without ranges.
func formatCPUList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// parsePinning parses the -server-cpus and -load-cpus lists (empty: not
// pinned), or with -pin (pin true) chooses them: see autoPinning.
func parsePinning(pin bool, server, load string) (serverCPUs, loadCPUs []int, err error) {
	if pin {
		if server != "" || load != "" {
			return nil, nil, errors.New("-pin chooses the CPUs itself: give -pin or -server-cpus and -load-cpus, not both")
		}
		allowed, err := allowedCPUs()
		if err != nil {
			return nil, nil, fmt.Errorf("-pin: %w", err)
		}
		return autoPinning(allowed)
	}
	if server != "" {
		if serverCPUs, err = parseCPUList(server); err != nil {
			return nil, nil, fmt.Errorf("-server-cpus: %w", err)
		}
	}
	if load != "" {
		if loadCPUs, err = parseCPUList(load); err != nil {
			return nil, nil, fmt.Errorf("-load-cpus: %w", err)
		}
	}
	if (serverCPUs != nil || loadCPUs != nil) && !pinningSupported {
		return nil, nil, pinProcess(0, nil) // its error says why
	}
	return serverCPUs, loadCPUs, nil
}

// autoPinning is -pin: the server side on the last of the CPUs this
// process may run on (allowed, sorted), the load on all the others. The
// server then has one core to itself on any machine with two or more, as
// the method asks, and the load as many as are left.
func autoPinning(allowed []int) (serverCPUs, loadCPUs []int, err error) {
	n := len(allowed)
	if n < 2 {
		return nil, nil, fmt.Errorf("-pin needs at least 2 CPUs; this process may run on %d", n)
	}
	return slices.Clone(allowed[n-1:]), slices.Clone(allowed[:n-1]), nil
}

// pinLoad pins this process, the load generator, to cpus (nil: not
// pinned), with as many Go processors.
func pinLoad(cpus []int) error {
	if cpus == nil {
		return nil
	}
	if err := pinProcess(os.Getpid(), cpus); err != nil {
		return err
	}
	runtime.GOMAXPROCS(len(cpus))
	return nil
}
