package plivo

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestTokenNeverLoggedNorInErrors(t *testing.T) {
	secrets := SecretForms(testAuthID, testAuthToken)
	if !slices.Contains(secrets, base64.StdEncoding.EncodeToString([]byte(testAuthID+":"+testAuthToken))) {
		t.Fatal("SecretForms lacks the Authorization header's credential")
	}
	scenarios := []struct {
		name    string
		replies []reply
		rate    float64
		burst   int
		timeout time.Duration
		call    func(c *Client, t *testing.T) error
	}{
		{name: "success", replies: []reply{{status: 200, body: okBody}}},
		{name: "401", replies: []reply{{status: 401, body: `{"error":"authentication credentials were not provided"}`}}},
		{name: "401 echoing the token", replies: []reply{{status: 401, body: `{"error":"token ` + testAuthToken + ` is wrong"}`}}},
		{name: "400 echoing the Authorization header", replies: []reply{{status: 400, body: `{"error":"bad request; Authorization: Basic ` + basicCredential + `"}`}}},
		{name: "404 echoing the header in a nested object", replies: []reply{{status: 404,
			body: `{"error":{"code":"not found","headers":{"Authorization":"Basic ` + basicCredential + `"}}}`}}},
		{name: "5xx echoing the header until the deadline", replies: []reply{{status: 503, body: `{"error":"down; Authorization: Basic ` + basicCredential + `"}`}},
			timeout: time.Second},
		{name: "429 then success", replies: []reply{{status: 429, header: map[string]string{"Retry-After": "1"}}, {status: 200, body: okBody}}},
		{name: "5xx until the deadline", replies: []reply{{status: 503, body: `<html>down</html>`}}, timeout: time.Second},
		{name: "connection dropped then success", replies: []reply{{drop: true}, {status: 200, body: okBody}}},
		{name: "undecodable success", replies: []reply{{status: 200, body: `not json`}}},
		{name: "busy", replies: []reply{{status: 200, body: okBody}}, rate: 0.1, burst: 1, call: func(c *Client, t *testing.T) error {
			_, _ = c.UpdateParticipant(withTimeout(t, time.Second), mustMPC(t, "m"), "1", muteUpdate)
			_, err := c.UpdateParticipant(withTimeout(t, time.Second), mustMPC(t, "m"), "1", muteUpdate)
			return err
		}},
		{name: "list and get", replies: []reply{{status: 200, body: `{"meta":{"next":null},"objects":[]}`}, {status: 404, body: `{}`}},
			call: func(c *Client, t *testing.T) error {
				if _, err := c.ListParticipants(withTimeout(t, time.Second), mustMPC(t, "m")); err != nil {
					return err
				}
				_, err := c.GetParticipant(withTimeout(t, time.Second), mustMPC(t, "m"), "2")
				return err
			}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			var logs syncBuffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			srv := sequenceServer(t, sc.replies...)
			c, _, _ := newTestClient(t, srv.URL, func(cfg *Config) {
				cfg.Logger = logger
				if sc.rate != 0 {
					cfg.Rate, cfg.Burst = rate.Limit(sc.rate), sc.burst
				}
			})
			var err error
			if sc.call != nil {
				err = sc.call(c, t)
			} else {
				timeout := sc.timeout
				if timeout == 0 {
					timeout = 5 * time.Second
				}
				_, err = c.UpdateParticipant(withTimeout(t, timeout), mustMPC(t, "m"), "1", muteUpdate)
			}
			out := logs.String()
			if !strings.Contains(out, `"msg":"plivo: attempt"`) {
				t.Errorf("no debug line per attempt was logged:\n%s", out)
			}
			if len(sc.replies) > 1 && sc.call == nil && !strings.Contains(out, `"level":"WARN"`) {
				t.Errorf("no warning on retry:\n%s", out)
			}
			for _, want := range []string{`"op":`, `"mpc":"m"`, `"status":`, `"duration":`, `"attempt":`} {
				if !strings.Contains(out, want) {
					t.Errorf("log lacks %s:\n%s", want, out)
				}
			}
			for _, secret := range secrets {
				if strings.Contains(out, secret) {
					t.Errorf("log contains a secret:\n%s", out)
				}
				if err != nil && strings.Contains(err.Error(), secret) {
					t.Errorf("error contains a secret: %v", err)
				}
				if e, ok := AsError(err); ok && strings.Contains(e.Message, secret) {
					t.Errorf("error message contains a secret: %q", e.Message)
				}
			}
		})
	}
}
