package main

// Fleet test helpers for what a test must be able to kill or hold: replicas
// running the real binary as child processes, and a gate in front of the
// Plivo simulator that keeps a command in flight.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildMpcbot compiles this command into the test's temporary directory
// (the build cache makes it quick after the first time).
func buildMpcbot(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mpcbot")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/mpcbot/mpcbot/cmd/mpcbot")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/mpcbot: %v\n%s", err, out)
	}
	return bin
}

// childReplica is one replica running the real binary as a child process
// (mpcbot run), so that a test can SIGKILL it.
type childReplica struct {
	name   string
	cmd    *exec.Cmd
	logs   *syncBuffer
	addr   string
	exited chan struct{}
}

// listeningAddr finds the health server's address in a JSON log.
var listeningAddr = regexp.MustCompile(`"msg":"health and metrics server listening","addr":"([^"]+)"`)

// startChild starts bin as a replica with the world's environment plus
// kv, waits until its connections are open and /readyz answers 200, and
// notes its connections as its own. It is killed with the test.
func (w *fleetWorld) startChild(bin, name string, kv ...string) *childReplica {
	t := w.t
	t.Helper()
	env := maps.Clone(w.env)
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	w.mu.Lock()
	w.started++
	w.mu.Unlock()
	c := &childReplica{name: name, logs: &syncBuffer{}, exited: make(chan struct{})}
	c.cmd = exec.Command(bin, "run")
	for _, k := range slices.Sorted(maps.Keys(env)) {
		c.cmd.Env = append(c.cmd.Env, k+"="+env[k])
	}
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	before := openConnectionIDs(w.slack)
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("child replica %s log:\n%s", name, c.logs.String())
		}
	})
	waitUntil(t, waitFor, "the health server of child replica "+name, func() bool {
		m := listeningAddr.FindStringSubmatch(c.logs.String())
		if m != nil {
			c.addr = m[1]
		}
		return m != nil || c.hasExited()
	})
	if c.hasExited() {
		t.Fatalf("child replica %s exited at start:\n%s", name, c.logs.String())
	}
	connections := 2
	if v, ok := env["SLACK_CONNECTIONS"]; ok {
		fmt.Sscan(v, &connections)
	}
	w.claimConnections(name, before, connections)
	waitUntil(t, waitFor, "/readyz of child replica "+name+" to answer 200", func() bool {
		code, _, err := c.get("/readyz")
		return err == nil && code == http.StatusOK
	})
	return c
}

func (c *childReplica) hasExited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL (no shutdown of any kind) and waits for the exit.
func (c *childReplica) kill() {
	if c.hasExited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

// get fetches a path from the child's health server.
func (c *childReplica) get(path string) (int, string, error) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + c.addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// auditRecordsFor returns the child's audit records of an envelope.
func (c *childReplica) auditRecordsFor(envelopeID string) []map[string]any {
	var out []map[string]any
	for _, rec := range auditRecordsIn(c.logs.String()) {
		if rec["envelope_id"] == envelopeID {
			out = append(out, rec)
		}
	}
	return out
}

// gateHold says what a shut gate holds.
type gateHold int

const (
	// holdRequests keeps requests from Plivo: nothing is changed yet.
	holdRequests gateHold = iota + 1
	// holdAnswers lets requests reach Plivo (the change is made) and
	// keeps their answers from the replica.
	holdAnswers
)

// plivoGate is a reverse proxy to the Plivo simulator for one replica
// (its PLIVO_API_URL). While shut, requests (or their answers) wait at the
// gate: a command is then "in flight" for as long as the test wants. What
// waits for a client that goes away (the replica was killed) is dropped.
type plivoGate struct {
	srv   *httptest.Server
	proxy *httputil.ReverseProxy

	mu        sync.Mutex
	hold      gateHold      // 0: open
	opened    chan struct{} // closed when the gate opens
	waiting   int
	abandoned int
}

// newPlivoGate starts an open gate in front of the simulator at target.
func newPlivoGate(t *testing.T, target string) *plivoGate {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &plivoGate{opened: make(chan struct{}), proxy: httputil.NewSingleHostReverseProxy(u)}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(func() {
		g.open()
		g.srv.Close()
	})
	return g
}

func (g *plivoGate) serve(w http.ResponseWriter, r *http.Request) {
	// Read the body first: only then does net/http notice a client that
	// goes away (and cancel r.Context()).
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	g.mu.Lock()
	hold, opened := g.hold, g.opened
	g.mu.Unlock()
	switch hold {
	case holdRequests:
		if !g.wait(r, opened) {
			return
		}
		g.proxy.ServeHTTP(w, r)
	case holdAnswers:
		answer := httptest.NewRecorder()
		g.proxy.ServeHTTP(answer, r.WithContext(context.WithoutCancel(r.Context())))
		if !g.wait(r, opened) {
			return
		}
		maps.Copy(w.Header(), answer.Header())
		w.WriteHeader(answer.Code)
		_, _ = w.Write(answer.Body.Bytes())
	default:
		g.proxy.ServeHTTP(w, r)
	}
}

// wait waits for the gate to open (true) or the client to go (false).
func (g *plivoGate) wait(r *http.Request, opened chan struct{}) bool {
	g.mu.Lock()
	g.waiting++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
	}()
	select {
	case <-opened:
		return true
	case <-r.Context().Done():
		g.mu.Lock()
		g.abandoned++
		g.mu.Unlock()
		return false
	}
}

// URL is the gate's base URL (a PLIVO_API_URL).
func (g *plivoGate) URL() string { return g.srv.URL }

// shut makes new requests (or their answers) wait at the gate.
func (g *plivoGate) shut(hold gateHold) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.hold == 0 {
		g.opened = make(chan struct{})
	}
	g.hold = hold
}

// open lets everything waiting, and everything new, through.
func (g *plivoGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.hold != 0 {
		g.hold = 0
		close(g.opened)
	}
}

// counts returns how many requests wait at the gate, and how many were
// abandoned there by their client.
func (g *plivoGate) counts() (waiting, abandoned int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting, g.abandoned
}
