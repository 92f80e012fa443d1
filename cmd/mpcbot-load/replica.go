package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// replica is one bot process (a child of this program): its command, its
// health server and its log file.
type replica struct {
	// index numbers the replicas of a world from 1.
	index    int
	cmd      *exec.Cmd
	exited   chan struct{}
	exitErr  error
	httpAddr string
	logPath  string
	logFile  *os.File
}

// startReplica starts the bot binary with env, its output in logPath.
// With cpus set, the process is pinned to those CPUs (taskset -c cpus).
func startReplica(bin, cpus string, index int, env map[string]string, logPath string) (*replica, error) {
	r := &replica{index: index, exited: make(chan struct{}), httpAddr: env["HTTP_ADDR"], logPath: logPath}
	var err error
	r.logFile, err = os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("bot log file: %w", err)
	}
	if cpus != "" {
		r.cmd = exec.Command("taskset", "-c", cpus, bin, "run")
	} else {
		r.cmd = exec.Command(bin, "run")
	}
	r.cmd.Env = envList(env)
	r.cmd.Stdout = r.logFile
	r.cmd.Stderr = r.logFile
	if err := r.cmd.Start(); err != nil {
		r.logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		r.exitErr = r.cmd.Wait()
		close(r.exited)
	}()
	return r, nil
}

func envList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	return list
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// waitReady polls /readyz until it says 200, the process exits or ctx ends.
func (r *replica) waitReady(ctx context.Context) error {
	for {
		status, _, err := r.get(ctx, "/readyz")
		if err == nil && status == http.StatusOK {
			return nil
		}
		select {
		case <-r.exited:
			return fmt.Errorf("bot %d exited: %v", r.index, r.exitErr)
		case <-ctx.Done():
			return fmt.Errorf("bot %d: /readyz did not answer 200 (last: %d %v)", r.index, status, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// get fetches a path from the bot's health server.
func (r *replica) get(ctx context.Context, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.httpAddr+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(b), err
}

// metric returns the value of an unlabelled metric from /metrics.
func (r *replica) metric(ctx context.Context, name string) (float64, bool) {
	status, body, err := r.get(ctx, "/metrics")
	if err != nil || status != http.StatusOK {
		return 0, false
	}
	return metricValue(body, name)
}

// metricValue finds an unlabelled metric in a Prometheus text exposition.
func metricValue(body, name string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// stop sends SIGTERM and waits up to limit for the bot to exit (then kills
// it).
func (r *replica) stop(limit time.Duration) error {
	if r.cmd == nil || r.cmd.Process == nil {
		return nil
	}
	select {
	case <-r.exited:
		return fmt.Errorf("bot %d had already exited: %v", r.index, r.exitErr)
	default:
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("bot %d: SIGTERM: %w", r.index, err)
	}
	select {
	case <-r.exited:
		if r.exitErr != nil {
			return fmt.Errorf("bot %d exited with %v after SIGTERM", r.index, r.exitErr)
		}
		return nil
	case <-time.After(limit):
		_ = r.cmd.Process.Kill()
		<-r.exited
		return fmt.Errorf("bot %d did not exit within %s of SIGTERM; killed", r.index, limit)
	}
}

// kill ends the process at once (cleanup after a failed start).
func (r *replica) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.exited
}

// logTail returns the last n lines of the bot's log.
func (r *replica) logTail(n int) string {
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logLines counts the bot's log lines.
func (r *replica) logLines() int {
	f, err := os.Open(r.logPath)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		n++
	}
	return n
}

// pid returns the bot's process id (taskset execs the bot in place, so
// it is the bot's either way).
func (r *replica) pid() int { return r.cmd.Process.Pid }

// memory is a process's resident memory from /proc/<pid>/status.
type memory struct {
	RSS, HWM int64 // bytes: VmRSS now and its peak (VmHWM)
}

// readMemory reads VmRSS and VmHWM of pid.
func readMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, fmt.Errorf("reading the bot's memory: %w", err)
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) < 1 {
			continue
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmRSS":
			m.RSS = kb << 10
		case "VmHWM":
			m.HWM = kb << 10
		}
	}
	if m.RSS == 0 {
		return m, errors.New("no VmRSS in /proc status (not Linux?)")
	}
	return m, nil
}

// cpuTime returns the user+system CPU time pid has used so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the bot's CPU time: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unreadable CPU times in /proc stat")
	}
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clkTck, nil
}

// selfCPU returns the CPU time this process (the fakes and the driver)
// has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// systemBusy returns the CPU time all processes on the machine have used
// so far (every CPU's user, nice, system, irq, softirq and steal time, from
// the first line of /proc/stat).
func systemBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, f := range fields[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0
		}
		ticks += v
	}
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ticks) * time.Second / clkTck
}
