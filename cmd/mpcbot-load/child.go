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
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// buildBot compiles ./cmd/mpcbot into dir and returns the binary's path.
func buildBot(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "mpcbot")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/mpcbot/mpcbot/cmd/mpcbot")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/mpcbot: %w\n%s", err, out)
	}
	return bin, nil
}

// world is one run of the bot as a child process, with the fake Slack and
// the Plivo simulator it talks to living in this process.
type world struct {
	slack    *slacktest.Server
	plivo    *plivotest.Server
	cmd      *exec.Cmd
	exited   chan struct{}
	exitErr  error
	httpAddr string
	logPath  string
	logFile  *os.File
}

// worldConfig is what differs between phases.
type worldConfig struct {
	name string
	// env is added to (and overrides) the bot's base environment.
	env map[string]string
	// accountLimit is the simulator's account budget per 5 s (0 = off).
	accountLimit int
}

// startWorld starts the fakes and the bot binary, and waits until the bot
// is connected to the fake Slack and says it is ready.
func startWorld(ctx context.Context, o *options, wc worldConfig) (*world, error) {
	w := &world{exited: make(chan struct{})}
	var err error
	w.slack, err = slacktest.Start()
	if err != nil {
		return nil, fmt.Errorf("fake Slack: %w", err)
	}
	limit := plivotest.WithAccountLimit(0, 0)
	if wc.accountLimit > 0 {
		limit = plivotest.WithAccountLimit(wc.accountLimit, plivotest.DefaultAccountWindow)
	}
	w.plivo, err = plivotest.Start(plivotest.WithSampleMPC(), plivotest.WithLogLimit(o.plivoLogLimit), limit)
	if err != nil {
		w.slack.Close()
		return nil, fmt.Errorf("Plivo simulator: %w", err)
	}
	w.httpAddr, err = freeAddr()
	if err != nil {
		w.closeFakes()
		return nil, err
	}
	env := map[string]string{
		"SLACK_APP_TOKEN":    w.slack.AppToken(),
		"SLACK_BOT_TOKEN":    w.slack.BotToken(),
		"SLACK_API_URL":      w.slack.APIURL(),
		"PLIVO_AUTH_ID":      w.plivo.AuthID,
		"PLIVO_AUTH_TOKEN":   w.plivo.AuthToken,
		"PLIVO_API_URL":      w.plivo.URL,
		"MPC_SUPERVISORS":    "*",
		"HTTP_ADDR":          w.httpAddr,
		"LOG_LEVEL":          o.logLevel,
		"LOG_FORMAT":         "json",
		"SHUTDOWN_GRACE":     "5s",
		"SLACK_PING_TIMEOUT": "30s",
	}
	for k, v := range wc.env {
		env[k] = v
	}
	for k, v := range o.childEnv {
		env[k] = v
	}
	w.logPath = filepath.Join(o.workDir, wc.name+".log")
	w.logFile, err = os.Create(w.logPath)
	if err != nil {
		w.closeFakes()
		return nil, fmt.Errorf("bot log file: %w", err)
	}
	w.cmd = exec.Command(o.bin, "run")
	w.cmd.Env = envList(env)
	w.cmd.Stdout = w.logFile
	w.cmd.Stderr = w.logFile
	if err := w.cmd.Start(); err != nil {
		w.logFile.Close()
		w.closeFakes()
		return nil, fmt.Errorf("starting %s: %w", o.bin, err)
	}
	go func() {
		w.exitErr = w.cmd.Wait()
		close(w.exited)
	}()
	if err := w.waitReady(ctx, 20*time.Second); err != nil {
		_ = w.stop(10 * time.Second)
		tail := w.logTail(20)
		w.closeFakes()
		return nil, fmt.Errorf("%w\nlast lines of the bot's log:\n%s", err, tail)
	}
	return w, nil
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
		return "", fmt.Errorf("finding a free port for HTTP_ADDR: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

// waitReady waits for a Socket Mode connection and for /readyz to say 200.
func (w *world) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if err := w.slack.WaitConnections(ctx, 1); err != nil {
		return fmt.Errorf("the bot did not connect to the fake Slack within %s: %w", limit, err)
	}
	for {
		status, _, err := w.get(ctx, "/readyz")
		if err == nil && status == http.StatusOK {
			return nil
		}
		select {
		case <-w.exited:
			return fmt.Errorf("the bot exited: %v", w.exitErr)
		case <-ctx.Done():
			return fmt.Errorf("the bot's /readyz did not answer 200 within %s (last: %d %v)", limit, status, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// get fetches a path from the bot's health server.
func (w *world) get(ctx context.Context, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.httpAddr+path, nil)
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
func (w *world) metric(ctx context.Context, name string) (float64, bool) {
	status, body, err := w.get(ctx, "/metrics")
	if err != nil || status != http.StatusOK {
		return 0, false
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// stop sends SIGTERM, waits up to limit for the bot to exit (then kills
// it), and returns how long the exit took. The fakes stay up: replies
// sent while draining are still recorded. Call closeFakes afterwards.
func (w *world) stop(limit time.Duration) error {
	if w.cmd == nil || w.cmd.Process == nil {
		return nil
	}
	select {
	case <-w.exited:
		return fmt.Errorf("the bot had already exited: %v", w.exitErr)
	default:
	}
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	select {
	case <-w.exited:
		if w.exitErr != nil {
			return fmt.Errorf("the bot exited with %v after SIGTERM", w.exitErr)
		}
		return nil
	case <-time.After(limit):
		_ = w.cmd.Process.Kill()
		<-w.exited
		return fmt.Errorf("the bot did not exit within %s of SIGTERM; killed", limit)
	}
}

// closeFakes stops the fake Slack and the Plivo simulator.
func (w *world) closeFakes() {
	if w.slack != nil {
		w.slack.Close()
	}
	if w.plivo != nil {
		w.plivo.Close()
	}
	if w.logFile != nil {
		w.logFile.Close()
	}
}

// logTail returns the last n lines of the bot's log.
func (w *world) logTail(n int) string {
	b, err := os.ReadFile(w.logPath)
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
func (w *world) logLines() int {
	f, err := os.Open(w.logPath)
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

func (w *world) pid() int { return w.cmd.Process.Pid }
