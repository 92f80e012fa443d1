package slacktest

import (
	"math"
	"net/http"
	"time"
)

// RateLimitStyle is how the per-channel posting limit answers (see
// WithChannelRateLimit).
type RateLimitStyle int

const (
	// RateLimitHTTP429 answers HTTP 429 {"ok":false,"error":"ratelimited"}
	// with a Retry-After header in whole seconds, as Slack's rate-limit
	// documentation describes (the default).
	RateLimitHTTP429 RateLimitStyle = iota
	// RateLimitOKFalse answers HTTP 200 {"ok":false,"error":"rate_limited"},
	// the error chat.postMessage's reference lists.
	RateLimitOKFalse
)

// WithChannelRateLimit limits chat.postMessage per channel with a token
// bucket: burst posts at once, then perSecond on average (Slack: about one
// message per second per channel, short bursts allowed). Off by default.
func WithChannelRateLimit(perSecond float64, burst int) Option {
	return func(c *config) { c.postRate, c.postBurst = perSecond, burst }
}

// SetChannelRateLimit changes the per-channel posting limit at run time
// (perSecond 0 turns it off). Every channel starts again with a full burst.
func (s *Server) SetChannelRateLimit(perSecond float64, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.postRate, s.postBurst = max(perSecond, 0), max(burst, 1)
	clear(s.buckets)
}

// SetRateLimitStyle sets how the per-channel posting limit answers.
func (s *Server) SetRateLimitStyle(style RateLimitStyle) {
	s.mu.Lock()
	s.rateStyle = style
	s.mu.Unlock()
}

// bucket is one channel's token bucket.
type bucket struct {
	tokens float64
	at     time.Time
}

// takePostTokenLocked takes a token from the channel's bucket. When there is
// none it returns the rate-limited answer and false. Every post attempt to a
// channel the bot may post to counts, refused ones included.
func (s *Server) takePostTokenLocked(channelID string) (apiResult, bool) {
	if s.postRate <= 0 {
		return apiResult{}, true
	}
	now := s.cfg.now()
	b := s.buckets[channelID]
	if b == nil {
		b = &bucket{tokens: float64(s.postBurst), at: now}
		s.buckets[channelID] = b
	}
	if elapsed := now.Sub(b.at).Seconds(); elapsed > 0 {
		b.tokens = min(float64(s.postBurst), b.tokens+elapsed*s.postRate)
	}
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return apiResult{}, true
	}
	if s.rateStyle == RateLimitOKFalse {
		return slackError("rate_limited"), false
	}
	wait := (1 - b.tokens) / s.postRate
	res := slackError("ratelimited")
	res.status, res.retryAfter = http.StatusTooManyRequests, max(1, int(math.Ceil(wait)))
	return res, false
}
