//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// pinningSupported says whether pinProcess works on this system.
const pinningSupported = true

// pinProcess restricts every thread of process pid to cpus (as taskset -a
// -p does). Threads started later inherit the mask of the thread that
// starts them, so a second pass over /proc/PID/task catches the threads
// the Go runtime started meanwhile.
func pinProcess(pid int, cpus []int) error {
	var mask [maxCPU / 64]uint64
	for _, c := range cpus {
		mask[c/64] |= 1 << (c % 64)
	}
	done := map[int]bool{}
	for pass := 0; pass < 10; pass++ {
		tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
		if err != nil {
			return err
		}
		fresh := 0
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil || done[tid] {
				continue
			}
			_, _, errno := syscall.Syscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(mask), uintptr(unsafe.Pointer(&mask)))
			if errno != 0 && !errors.Is(errno, syscall.ESRCH) { // ESRCH: the thread has exited
				return fmt.Errorf("pin to CPUs %s: %w", formatCPUList(cpus), errno)
			}
			done[tid] = true
			fresh++
		}
		if fresh == 0 {
			return nil
		}
	}
	return nil
}

// allowedCPUs lists the CPUs this process may run on (its affinity mask,
// as taskset -p shows it), sorted.
func allowedCPUs() ([]int, error) {
	var mask [maxCPU / 64]uint64
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, unsafe.Sizeof(mask), uintptr(unsafe.Pointer(&mask)))
	if errno != 0 {
		return nil, fmt.Errorf("reading the CPU affinity: %w", errno)
	}
	var cpus []int
	for c := range maxCPU {
		if mask[c/64]&(1<<(c%64)) != 0 {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}
