package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// Plivo faults the bot must survive, end to end: every command ends in
// exactly one thread reply saying what happened, and an update is applied
// at most once.

// Timings of TestFaultPlivo. The exact request counts it checks hold only
// while every attempt Plivo answers reaches the client within
// plivoTimeout, so there is a wide margin between them: a busy machine
// under -race can stall the process for a second or more.
const (
	plivoTimeout   = "3s"                   // PLIVO_TIMEOUT: one attempt
	commandTimeout = "10s"                  // MPC_COMMAND_TIMEOUT: the whole command
	slowAnswer     = 300 * time.Millisecond // slow, but well within plivoTimeout
	noAnswer       = time.Minute            // never: the client gives up first
)

// Plivo failing in every way it can: each command ends in exactly one
// thread reply with ✅ or ❌ and the reason, and an update that was not
// applied by a failed attempt is applied once by its retry. Each case has
// its own bot and simulator, so a request one case abandoned never lands
// in another's count, and the cases run side by side.
func TestFaultPlivo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		setup        func(sim *plivotest.Server)
		want         []string // in the reply
		wantRequests int      // Plivo update requests for the command (0: at least 2); reads back come on top
		wantApplied  int
	}{
		{name: "429 with Retry-After", setup: func(sim *plivotest.Server) { sim.FailNext(1, plivotest.Fault{Status: 429, RetryAfter: "1"}) },
			want: []string{"✅"}, wantRequests: 2, wantApplied: 1},
		{name: "429 without Retry-After", setup: func(sim *plivotest.Server) { sim.FailNext(1, plivotest.Fault{Status: 429}) },
			want: []string{"✅"}, wantRequests: 2, wantApplied: 1},
		{name: "500", setup: func(sim *plivotest.Server) { sim.FailNext(1, plivotest.Fault{Status: 500}) },
			want: []string{"✅"}, wantRequests: 2, wantApplied: 1},
		{name: "502", setup: func(sim *plivotest.Server) { sim.FailNext(1, plivotest.Fault{Status: 502}) },
			want: []string{"✅"}, wantRequests: 2, wantApplied: 1},
		// The first 503 leaves the outcome unknown: the next two faults hit
		// the reads back, which are retried rather than resending blind;
		// the third read shows nothing applied, so the update is resent.
		{name: "503 three times", setup: func(sim *plivotest.Server) { sim.FailNext(3, plivotest.Fault{Status: 503}) },
			want: []string{"✅"}, wantRequests: 2, wantApplied: 1},
		{name: "timeout (no answer within PLIVO_TIMEOUT)", setup: func(sim *plivotest.Server) { sim.FailNext(1, plivotest.Fault{Delay: noAnswer}) },
			want: []string{"✅"}, wantRequests: 2, wantApplied: 1},
		{name: "connection dropped without an answer", setup: func(sim *plivotest.Server) { sim.FailNext(1, plivotest.Fault{Drop: true}) },
			want: []string{"✅"}, wantRequests: 2, wantApplied: 1},
		{name: "slow but in time", setup: func(sim *plivotest.Server) { sim.SetDelay(slowAnswer) },
			want: []string{"✅"}, wantRequests: 1, wantApplied: 1},
		{name: "404 is not retried", setup: func(sim *plivotest.Server) { sim.FailNext(1, plivotest.Fault{Status: 404}) },
			want: []string{"❌", "not found", "HTTP 404"}, wantRequests: 1, wantApplied: 0},
		// Nothing answers: the update is sent once, then only read back
		// (never resent blind) until the deadline.
		{name: "no answer until the command's deadline", setup: func(sim *plivotest.Server) { sim.SetDelay(noAnswer) },
			want: []string{"❌", "Plivo did not answer in time or had an error", "may or may not have been applied"}, wantRequests: 1, wantApplied: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := startBot(t, withEnv("PLIVO_TIMEOUT", plivoTimeout, "MPC_COMMAND_TIMEOUT", commandTimeout))
			customer := h.member("customer")
			tt.setup(h.plivo)
			_, _, reply := h.change(supervisorID, "hold test_mpc_1 "+customer, "hold member "+customer+" in test_mpc_1")
			for _, w := range tt.want {
				if !strings.Contains(reply.Text, w) {
					t.Errorf("reply lacks %q:\n%s", w, reply.Text)
				}
			}
			if n := h.plivo.PendingFaults(); n != 0 {
				t.Fatalf("%d injected faults left unused", n)
			}
			// A request the client gave up on is logged once the simulator
			// notices, which may be after the reply: wait for the count.
			least := tt.wantRequests
			if least == 0 {
				least = 2 // retries
			}
			got := 0
			waitUntil(t, waitFor, fmt.Sprintf("%d Plivo update requests in the simulator's log", least), func() bool {
				got = len(h.updateRequests(0))
				return got >= least
			})
			if tt.wantRequests > 0 && got != tt.wantRequests {
				t.Errorf("%d Plivo requests, want %d", got, tt.wantRequests)
			}
			if n := len(h.plivo.AppliedUpdates()); n != tt.wantApplied {
				t.Errorf("%d updates applied, want %d", n, tt.wantApplied)
			}
		})
	}

	// The ambiguous case: Plivo applied the change but the answer was lost
	// (503 after applying). The client reads the state back before
	// resending, sees the change in place, and does not send it again:
	// Plivo gets the update once, the user one ✅ saying how it was
	// confirmed.
	t.Run("applied but the answer was a 503", func(t *testing.T) {
		t.Parallel()
		h := startBot(t, withEnv("PLIVO_TIMEOUT", plivoTimeout, "MPC_COMMAND_TIMEOUT", commandTimeout))
		customer := h.member("customer")
		h.plivo.FailNext(1, plivotest.Fault{Status: 503, Apply: true})
		_, _, reply := h.change(supervisorID, "hold test_mpc_1 "+customer, "hold member "+customer+" in test_mpc_1")
		if !strings.Contains(reply.Text, "✅ hold") || !strings.Contains(reply.Text, "reading the state back") {
			t.Fatalf("reply:\n%s", reply.Text)
		}
		if ups := h.plivo.AppliedUpdates(); len(ups) != 1 {
			t.Fatalf("want the update applied exactly once, got %+v", ups)
		}
		if st, _ := h.plivo.Participant(plivotest.SampleMPCName, customer); !st.Hold {
			t.Fatalf("customer hold = %v after hold", st.Hold)
		}
	})
}

// Plivo refusing connections (PLIVO_API_URL points at a closed port): the
// command ends in one ❌ reply saying Plivo could not be reached.
func TestFaultPlivoConnectionRefused(t *testing.T) {
	t.Parallel()
	// Port 1 is below the ephemeral range: no server of a test running
	// beside this one can be given it. (A port freed by closing a listener
	// can, and then this bot's requests reach that test's simulator.)
	const closed = "http://127.0.0.1:1"
	h := startBot(t, withEnv("PLIVO_API_URL", closed, "MPC_COMMAND_TIMEOUT", "3s"))
	_, _, reply := h.change(supervisorID, "mute test_mpc_1 101", "mute member 101 in test_mpc_1")
	for _, w := range []string{"❌ mute", "Plivo did not answer in time or had an error", "could not reach Plivo"} {
		if !strings.Contains(reply.Text, w) {
			t.Errorf("reply lacks %q:\n%s", w, reply.Text)
		}
	}
	if code, body := h.get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d (%q): an unreachable Plivo is not a credentials problem", code, body)
	}
}
