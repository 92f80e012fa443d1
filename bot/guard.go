package bot

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// connectGuard is the HTTP transport mpcbot gives slack-go. It bounds how
// often apps.connections.open is called: slack-go v0.35.0 reconnects with
// no backoff when a connection opens and is closed again at once (a
// flapping proxy, too_many_websockets), which would otherwise mean
// thousands of calls per second. A flapping episode is logged once when it
// starts and once when it ends, not once per attempt.
type connectGuard struct {
	next    http.RoundTripper
	limiter *rate.Limiter
	log     *slog.Logger
	metrics Metrics

	mu       sync.Mutex
	flapping bool
	delayed  int
	since    time.Time
}

func newConnectGuard(next http.RoundTripper, r rate.Limit, burst int, log *slog.Logger, m Metrics) *connectGuard {
	if next == nil {
		next = http.DefaultTransport
	}
	return &connectGuard{next: next, limiter: rate.NewLimiter(r, burst), log: log, metrics: m}
}

// RoundTrip implements http.RoundTripper.
func (g *connectGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/apps.connections.open") {
		if err := g.wait(req); err != nil {
			return nil, err
		}
	}
	return g.next.RoundTrip(req)
}

func (g *connectGuard) wait(req *http.Request) error {
	res := g.limiter.Reserve()
	delay := res.Delay()
	g.mu.Lock()
	switch {
	case delay > 0 && !g.flapping:
		g.flapping, g.delayed, g.since = true, 0, time.Now()
		g.log.Warn("Socket Mode connections keep closing right after they open; limiting reconnects",
			"max_per_second", float64(g.limiter.Limit()), "burst", g.limiter.Burst())
	case delay == 0 && g.flapping:
		g.flapping = false
		g.log.Info("Socket Mode reconnects back to normal", "throttled_attempts", g.delayed,
			"episode", time.Since(g.since).Round(time.Second))
	}
	if delay > 0 {
		g.delayed++
		g.metrics.SocketEvent("reconnect_throttled")
	}
	g.mu.Unlock()
	if delay == 0 {
		return nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-req.Context().Done():
		res.Cancel()
		return req.Context().Err()
	}
}
