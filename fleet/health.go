package fleet

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Status is the health of the fleet's shared state, for /readyz and
// /metrics.
type Status struct {
	// Healthy is true while Redis answers; false while every piece runs on
	// its per-process fallback.
	Healthy bool
	// Since is when the current state began.
	Since time.Time
	// Reason says why the fleet is degraded (the failed call); empty when
	// healthy. It never contains the Redis password.
	Reason string
}

// health holds the Status and logs its transitions, once each.
type health struct {
	ok  atomic.Bool
	log *slog.Logger
	url string // for redaction

	mu sync.Mutex
	st Status
}

func (h *health) init(log *slog.Logger, url string) {
	h.log, h.url = log, url
	h.ok.Store(true)
	h.st = Status{Healthy: true, Since: time.Now()}
}

func (h *health) healthy() bool { return h.ok.Load() }

func (h *health) status() Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.st
}

// degrade switches to degraded (logged once) unless already degraded.
func (h *health) degrade(reason error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.st.Healthy {
		return
	}
	h.st = Status{Healthy: false, Since: time.Now(), Reason: redact(reason.Error(), h.url)}
	h.ok.Store(false)
	h.log.Warn("fleet: redis unreachable; shared state degraded to per-process until it answers again",
		slog.String("reason", h.st.Reason))
}

// recover switches to healthy (logged once) unless already healthy.
func (h *health) recover() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.st.Healthy {
		return
	}
	down := time.Since(h.st.Since)
	h.st = Status{Healthy: true, Since: time.Now()}
	h.ok.Store(true)
	h.log.Info("fleet: redis answers again; shared state restored",
		slog.Duration("degraded_for", down.Round(time.Millisecond)))
}
