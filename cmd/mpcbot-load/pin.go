package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// cpuCount returns how many CPUs a taskset list names ("1", "0,1",
// "0-3,6").
func cpuCount(list string) (int, error) {
	seen := map[int]bool{}
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return 0, fmt.Errorf("%q is not a CPU list like 1 or 0-1", list)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, fmt.Errorf("%q is not a CPU list like 1 or 0-1", list)
			}
		}
		for c := a; c <= b; c++ {
			seen[c] = true
		}
	}
	return len(seen), nil
}

// pinSelf pins every thread of this process to the CPUs of list (threads
// started later inherit it) and sets GOMAXPROCS to their number.
func pinSelf(list string) error {
	n, err := cpuCount(list)
	if err != nil {
		return err
	}
	out, err := exec.Command("taskset", "-a", "-p", "-c", list, strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset: %w: %s", err, strings.TrimSpace(string(out)))
	}
	runtime.GOMAXPROCS(n)
	return nil
}
