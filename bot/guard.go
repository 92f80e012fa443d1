package bot

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// stableLink is how long a Socket Mode connection must stay up after hello
// for a reconnect storm to count as over.
const stableLink = 5 * time.Second

// connectGuard is the HTTP transport mpcbot gives slack-go. It bounds how
// often apps.connections.open is called: slack-go v0.35.0 reconnects with
// no backoff when a connection opens and is closed again at once (a
// flapping proxy, too_many_websockets), which would otherwise mean
// thousands of calls per second.
//
// A storm is logged once when the limiter first has to hold a call back,
// and once when it is over — when a connection has stayed up for
// stableLink after hello — not once per attempt. While it lasts, Flapping
// reports true so the bot logs each connect and disconnect at debug level
// only.
type connectGuard struct {
	next        http.RoundTripper
	limiter     *rate.Limiter
	log         *slog.Logger
	metrics     Metrics
	stableAfter time.Duration

	mu       sync.Mutex
	flapping bool
	delayed  int
	since    time.Time
	gen      int         // bumped by every open call and every hello
	stable   *time.Timer // ends the storm if the current link stays up
}

func newConnectGuard(next http.RoundTripper, r rate.Limit, burst int, log *slog.Logger, m Metrics) *connectGuard {
	if next == nil {
		next = http.DefaultTransport
	}
	return &connectGuard{next: next, limiter: rate.NewLimiter(r, burst), log: log, metrics: m, stableAfter: stableLink}
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

// Flapping reports whether a reconnect storm is going on.
func (g *connectGuard) Flapping() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.flapping
}

// linkUp is called when Slack says hello on a new connection: if it stays
// up for stableAfter (no new apps.connections.open call meanwhile), a storm
// is over.
func (g *connectGuard) linkUp() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopLocked()
	if !g.flapping {
		return
	}
	gen := g.gen
	g.stable = time.AfterFunc(g.stableAfter, func() { g.recovered(gen) })
}

func (g *connectGuard) recovered(gen int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gen != g.gen || !g.flapping {
		return
	}
	g.flapping = false
	g.stable = nil
	g.log.Info("Socket Mode reconnects back to normal", "throttled_attempts", g.delayed,
		"episode", time.Since(g.since).Round(time.Second))
}

// stopLocked cancels a pending end of storm.
func (g *connectGuard) stopLocked() {
	g.gen++
	if g.stable != nil {
		g.stable.Stop()
		g.stable = nil
	}
}

// close cancels timers; the guard keeps working.
func (g *connectGuard) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopLocked()
}

func (g *connectGuard) wait(req *http.Request) error {
	res := g.limiter.Reserve()
	delay := res.Delay()
	g.mu.Lock()
	g.stopLocked() // a new connection is wanted: the previous link did not last
	if delay > 0 {
		if !g.flapping {
			g.flapping, g.delayed, g.since = true, 0, time.Now()
			g.log.Warn("Socket Mode keeps reconnecting (connections close right after they open, or fail to open); limiting apps.connections.open",
				"max_per_second", float64(g.limiter.Limit()), "burst", g.limiter.Burst())
		}
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
