//go:build !linux

package main

import "errors"

const pinningSupported = false

func pinProcess(int, []int) error {
	return errors.New("CPU pinning (-server-cpus, -load-cpus) needs Linux; use -gomaxprocs, or run under your system's affinity tool")
}

func allowedCPUs() ([]int, error) { return nil, pinProcess(0, nil) }
