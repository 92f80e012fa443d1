package plivotest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

var (
	uuidRE      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	timestampRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\+00:00$`)
)

// call is one HTTP request to a simulator.
type call struct {
	method string
	// path is relative to /v1/Account/{AuthID}/MultiPartyCall/ unless it
	// starts with '/', in which case it is used as is.
	path        string
	body        string
	contentType string // default application/json when body != ""
	noAuth      bool
	user, pass  string // override credentials when non-empty
}

// reply is a decoded response.
type reply struct {
	status int
	header http.Header
	raw    []byte
	obj    map[string]any // nil if the body is not a JSON object
}

func (c call) url(s *plivotest.Server) string {
	if strings.HasPrefix(c.path, "/") {
		return s.URL + c.path
	}
	return s.URL + "/v1/Account/" + s.AuthID + "/MultiPartyCall/" + c.path
}

// do sends c to s and decodes the reply; it fails the test on transport
// errors.
func do(t testing.TB, s *plivotest.Server, c call) reply {
	t.Helper()
	r, err := doCtx(context.Background(), s, c)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	return r
}

func doCtx(ctx context.Context, s *plivotest.Server, c call) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, c.url(s), body)
	if err != nil {
		return reply{}, err
	}
	if c.body != "" {
		ct := c.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	} else if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	if !c.noAuth {
		user, pass := s.AuthID, s.AuthToken
		if c.user != "" {
			user = c.user
		}
		if c.pass != "" {
			pass = c.pass
		}
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		_ = json.Unmarshal(raw, &r.obj)
	}
	return r, nil
}

// keys returns the sorted keys of m.
func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkError asserts a Plivo-shaped error: exactly {"api_id","error"} with a
// uuid api_id and an error text containing want.
func checkError(t *testing.T, r reply, status int, want string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.raw)
	}
	if r.obj == nil {
		t.Fatalf("body is not a JSON object: %q", r.raw)
	}
	if got := strings.Join(keys(r.obj), ","); got != "api_id,error" {
		t.Errorf("error keys = %s, want api_id,error; body %s", got, r.raw)
	}
	if id, _ := r.obj["api_id"].(string); !uuidRE.MatchString(id) {
		t.Errorf("api_id = %v, want a uuid", r.obj["api_id"])
	}
	msg, _ := r.obj["error"].(string)
	if msg == "" || !strings.Contains(msg, want) {
		t.Errorf("error = %q, want it to contain %q", msg, want)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeClock is a settable clock for WithClock.
type fakeClock struct {
	ch chan time.Time // holds the current time; a channel keeps it race-free
}

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{ch: make(chan time.Time, 1)}
	c.ch <- t
	return c
}

func (c *fakeClock) Now() time.Time {
	t := <-c.ch
	c.ch <- t
	return t
}

func (c *fakeClock) Advance(d time.Duration) {
	t := <-c.ch
	c.ch <- t.Add(d)
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
