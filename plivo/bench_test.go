package plivo

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/time/rate"
)

// BenchmarkUpdateParticipant measures the client's own overhead per update
// (URL, encoding, limiter, HTTP round trip on loopback, decoding) with a
// limiter that never waits.
func BenchmarkUpdateParticipant(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, okBody)
	}))
	defer srv.Close()
	c, err := New(Config{AuthID: testAuthID, AuthToken: testAuthToken, BaseURL: srv.URL, Rate: rate.Inf, Burst: 1})
	if err != nil {
		b.Fatal(err)
	}
	mpc, err := MPCByName("mpc 1000")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.UpdateParticipant(ctx, mpc, "209", muteUpdate); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExcerpt measures making a shown excerpt (redaction, printable
// text, the cut) of a typical result string and of a 60 000-character one.
func BenchmarkExcerpt(b *testing.B) {
	c, err := New(Config{AuthID: testAuthID, AuthToken: testAuthToken})
	if err != nil {
		b.Fatal(err)
	}
	for _, in := range []struct{ name, s string }{
		{"result", "MPC: test_mpc_1 mute/unmute member(s) succeeded"},
		{"60k", "MPC: x \u202e\u200b\a\n\t" + strings.Repeat("x", 60_000)},
	} {
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = c.excerpt(in.s, maxMessageRunes)
			}
		})
	}
}
