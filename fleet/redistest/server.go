// Package redistest runs a real redis-server for tests and load programs,
// like net/http/httptest does for HTTP: Start launches one on a free port of
// 127.0.0.1 with persistence off and returns once it answers PING; Kill and
// Restart are there for fault tests. It does not import testing, so that
// programs (cmd/mpcbot-load) can use it too.
//
// redis-server must be installed (apt-get install -y redis-server); when it
// is missing, Start fails with that advice rather than skipping anything.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// startTimeout bounds how long Start and Restart wait for PING to answer.
const startTimeout = 10 * time.Second

// Options configure a Server. The zero value is a server without a password.
type Options struct {
	// Password, when set, is required from clients (requirepass) and put in
	// URL.
	Password string
	// Binary is the redis-server executable; default: "redis-server" from PATH.
	Binary string
}

// Server is one redis-server process listening on 127.0.0.1.
type Server struct {
	opts   Options
	binary string
	dir    string
	port   int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	output *lockedBuffer
}

// Start launches a redis-server on a free port of 127.0.0.1 with
// persistence off (no RDB, no AOF) in a temporary directory, and waits until
// it answers PING.
func Start(opts Options) (*Server, error) {
	binary := opts.Binary
	if binary == "" {
		binary = "redis-server"
	}
	path, err := exec.LookPath(binary)
	if err != nil {
		return nil, fmt.Errorf("redistest: %s not found (install it: apt-get install -y redis-server): %w", binary, err)
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, fmt.Errorf("redistest: temporary directory: %w", err)
	}
	s := &Server{opts: opts, binary: path, dir: dir}
	// A free port can be taken by someone else between our probe and the
	// server's bind: try a few.
	for attempt := 0; ; attempt++ {
		s.port, err = freePort()
		if err == nil {
			err = s.start()
		}
		if err == nil {
			return s, nil
		}
		if attempt == 4 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

// URL returns the redis:// URL of the server (with the password, if any).
func (s *Server) URL() string {
	if s.opts.Password != "" {
		return fmt.Sprintf("redis://:%s@%s/0", s.opts.Password, s.Addr())
	}
	return fmt.Sprintf("redis://%s/0", s.Addr())
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Kill stops the server with SIGKILL (no shutdown, like a crash) and waits
// for it to exit. Killing a stopped server does nothing.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.killLocked()
}

// Restart kills the server if it runs and starts a new, empty one on the
// same address.
func (s *Server) Restart() error {
	s.mu.Lock()
	if err := s.killLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()
	var err error
	// The port was ours a moment ago; retry briefly in case the kernel has
	// not released it yet.
	deadline := time.Now().Add(startTimeout)
	for {
		if err = s.start(); err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close kills the server and removes its directory.
func (s *Server) Close() error {
	err := s.Kill()
	if rmErr := os.RemoveAll(s.dir); rmErr != nil && err == nil {
		err = fmt.Errorf("redistest: remove %s: %w", s.dir, rmErr)
	}
	return err
}

func (s *Server) start() error {
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--loglevel", "warning",
		"--databases", "16",
	}
	if s.opts.Password != "" {
		args = append(args, "--requirepass", s.opts.Password)
	}
	cmd := exec.Command(s.binary, args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start %s: %w", s.binary, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited, s.output = cmd, exited, out
	s.mu.Unlock()
	if err := s.waitReady(exited); err != nil {
		s.Kill()
		return fmt.Errorf("redistest: redis-server on %s: %w (output: %s)", s.Addr(), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// waitReady polls PING until the server answers or exits.
func (s *Server) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("exited before answering PING")
		default:
		}
		if err = s.ping(); err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no answer to PING within %v: %w", startTimeout, err)
}

// ping speaks just enough RESP to send AUTH (if needed) and PING.
func (s *Server) ping() error {
	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	r := bufio.NewReader(conn)
	if s.opts.Password != "" {
		if _, err := fmt.Fprintf(conn, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(s.opts.Password), s.opts.Password); err != nil {
			return err
		}
		if line, err := r.ReadString('\n'); err != nil {
			return err
		} else if !strings.HasPrefix(line, "+OK") {
			return errors.New("AUTH refused")
		}
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

func (s *Server) killLocked() error {
	if s.cmd == nil {
		return nil
	}
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("redistest: kill redis-server: %w", err)
	}
	<-s.exited
	s.cmd = nil
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer collects the server's output for error messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 64<<10 {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
