package plivotest_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

var muteCustomer = call{method: "POST", path: sample + "Participant/" + customer + "/", body: `{"mute":true}`}

func TestFailNextFIFO(t *testing.T) {
	s := plivotest.NewServer(plivotest.WithSampleMPC())
	defer s.Close()
	s.FailNext(1, plivotest.Fault{Status: 500})
	s.FailNext(2, plivotest.Fault{Status: 429, RetryAfter: "2"})
	s.FailNext(1, plivotest.Fault{Status: 502, Body: "<html>bad gateway</html>"})
	s.FailNext(0, plivotest.Fault{Status: 418}) // no-op
	if n := s.PendingFaults(); n != 4 {
		t.Fatalf("PendingFaults = %d, want 4", n)
	}
	want := []struct {
		status     int
		retryAfter string
		body       string // exact body, or "" for a Plivo-shaped error with errText
		errText    string
	}{
		{500, "", "", "internal server error"},
		{429, "2", "", "too many requests"},
		{429, "2", "", "too many requests"},
		{502, "", "<html>bad gateway</html>", ""},
		{200, "", "", ""},
	}
	for i, w := range want {
		c := muteCustomer
		if i == 1 {
			c = call{method: "GET", path: "/anything", noAuth: true} // faults apply to any request
		}
		r := do(t, s, c)
		switch {
		case w.status == 200:
			if r.status != 200 {
				t.Errorf("request %d: %d %s, want a normal 200", i, r.status, r.raw)
			}
		case w.body != "":
			if r.status != w.status || string(r.raw) != w.body {
				t.Errorf("request %d: %d %q, want %d %q", i, r.status, r.raw, w.status, w.body)
			}
		default:
			checkError(t, r, w.status, w.errText)
		}
		if got := r.header.Get("Retry-After"); got != w.retryAfter {
			t.Errorf("request %d: Retry-After = %q, want %q", i, got, w.retryAfter)
		}
	}
	log := s.Requests()
	if len(log) != 5 {
		t.Fatalf("log has %d requests, want 5", len(log))
	}
	for i, r := range log {
		if wantFault := i < 4; r.Fault != wantFault || r.Status != want[i].status {
			t.Errorf("log[%d] = status %d fault %v, want %d fault %v", i, r.Status, r.Fault, want[i].status, wantFault)
		}
	}
	if st, _ := s.Participant(plivotest.SampleMPCName, customer); !st.Mute {
		t.Error("the request after the faults was not applied")
	}
	if n := len(s.AppliedUpdates()); n != 1 {
		t.Errorf("AppliedUpdates = %d, want 1", n)
	}
}

func TestFaultApply(t *testing.T) {
	tests := []struct {
		name      string
		fault     plivotest.Fault
		status    int // 0: no response expected (transport error)
		wantMuted bool
	}{
		{"failure without apply changes nothing", plivotest.Fault{Status: 503}, 503, false},
		{"failure with apply: unknown outcome", plivotest.Fault{Status: 503, Apply: true}, 503, true},
		{"gateway timeout with apply", plivotest.Fault{Status: 504, Apply: true, Delay: 20 * time.Millisecond}, 504, true},
		{"slow success", plivotest.Fault{Delay: 20 * time.Millisecond, Apply: true}, 200, true},
		{"slow normal answer", plivotest.Fault{Delay: 20 * time.Millisecond}, 200, true},
		{"drop without apply", plivotest.Fault{Drop: true}, 0, false},
		{"drop with apply", plivotest.Fault{Drop: true, Apply: true}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := plivotest.NewServer(plivotest.WithSampleMPC())
			defer s.Close()
			s.FailNext(1, tt.fault)
			r, err := doCtx(context.Background(), s, muteCustomer)
			switch {
			case tt.status == 0 && err == nil:
				t.Fatalf("got %d %s, want the connection dropped", r.status, r.raw)
			case tt.status != 0 && err != nil:
				t.Fatal(err)
			case tt.status != 0 && r.status != tt.status:
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.raw)
			}
			if st, _ := s.Participant(plivotest.SampleMPCName, customer); st.Mute != tt.wantMuted {
				t.Errorf("mute = %v, want %v", st.Mute, tt.wantMuted)
			}
			log := s.Requests()
			if len(log) != 1 || !log[0].Fault || log[0].Status != tt.status || log[0].Applied != tt.wantMuted {
				t.Errorf("log = %+v, want one fault with status %d applied %v", log, tt.status, tt.wantMuted)
			}
			if n := len(s.AppliedUpdates()); n != map[bool]int{false: 0, true: 1}[tt.wantMuted] {
				t.Errorf("AppliedUpdates = %d", n)
			}
		})
	}
}

// TestDelayCancelled checks that delays honour the client giving up: the
// handler returns, nothing is sent, and only Apply changes state.
func TestDelayCancelled(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(*plivotest.Server)
		wantMuted bool
		wantFault bool
	}{
		{"fault delay", func(s *plivotest.Server) { s.FailNext(1, plivotest.Fault{Delay: time.Hour}) }, false, true},
		{"fault delay with apply", func(s *plivotest.Server) { s.FailNext(1, plivotest.Fault{Delay: time.Hour, Apply: true}) }, true, true},
		{"fault delay before a 500", func(s *plivotest.Server) { s.FailNext(1, plivotest.Fault{Delay: time.Hour, Status: 500}) }, false, true},
		{"server delay", func(s *plivotest.Server) { s.SetDelay(time.Hour) }, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := plivotest.NewServer(plivotest.WithSampleMPC())
			defer s.Close()
			tt.setup(s)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_, err := doCtx(ctx, s, muteCustomer)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want the client's deadline", err)
			}
			waitFor(t, "the abandoned request in the log", func() bool { return s.RequestCount() == 1 })
			r := s.Requests()[0]
			if r.Status != 0 || r.Fault != tt.wantFault || r.Applied != tt.wantMuted {
				t.Errorf("log = %+v, want status 0 fault %v applied %v", r, tt.wantFault, tt.wantMuted)
			}
			if st, _ := s.Participant(plivotest.SampleMPCName, customer); st.Mute != tt.wantMuted {
				t.Errorf("mute = %v, want %v", st.Mute, tt.wantMuted)
			}
		})
	}
}

func TestSetDelay(t *testing.T) {
	s := plivotest.NewServer(plivotest.WithSampleMPC())
	defer s.Close()
	s.SetDelay(30 * time.Millisecond)
	start := time.Now()
	if r := do(t, s, muteCustomer); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	// A lower bound only: the answer cannot come before the delay.
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Errorf("answered after %v, before the 30ms delay", el)
	}
	s.SetDelay(0)
	if r := do(t, s, muteCustomer); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

// TestCloseEndsDelays checks that Close does not wait for pending delays.
func TestCloseEndsDelays(t *testing.T) {
	s := plivotest.NewServer(plivotest.WithSampleMPC())
	s.FailNext(1, plivotest.Fault{Delay: time.Hour})
	errc := make(chan error, 1)
	go func() {
		_, err := doCtx(context.Background(), s, muteCustomer)
		errc <- err
	}()
	waitFor(t, "the request to arrive", func() bool { return s.PendingFaults() == 0 })
	s.Close()
	s.Close() // harmless
	select {
	case err := <-errc:
		if err == nil {
			t.Error("the delayed request got an answer after Close")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the delayed request still hangs after Close")
	}
	if n := s.RequestCount(); n != 1 {
		t.Errorf("RequestCount = %d, want 1", n)
	}
}

func TestAccountLimit(t *testing.T) {
	clock := newFakeClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	s := plivotest.NewServer(plivotest.WithSampleMPC(), plivotest.WithClock(clock.Now), plivotest.WithAccountLimit(3, 5*time.Second))
	defer s.Close()
	get := call{method: "GET", path: sample}
	expect := func(step string, status int) reply {
		t.Helper()
		r := do(t, s, get)
		if r.status != status {
			t.Fatalf("%s: status %d, want %d: %s", step, r.status, status, r.raw)
		}
		return r
	}
	expect("1st", 200)
	clock.Advance(time.Second)
	expect("2nd", 200)
	// Unauthenticated requests and faults do not spend the account budget.
	checkError(t, do(t, s, call{method: "GET", path: sample, noAuth: true}), 401, "")
	s.FailNext(1, plivotest.Fault{Status: 500})
	expect("fault", 500)
	// 404s for the account do.
	checkError(t, do(t, s, call{method: "GET", path: "name_nosuch/"}), 404, "nosuch")
	r := expect("4th", 429)
	checkError(t, r, 429, "")
	if r.obj["error"] != "too many requests" {
		t.Errorf("error = %v, want %q", r.obj["error"], "too many requests")
	}
	if ra := r.header.Get("Retry-After"); ra != "" {
		t.Errorf("Retry-After = %q, want none by default", ra)
	}
	s.SetAccountLimitRetryAfter(true)
	r = expect("5th", 429)
	if ra := r.header.Get("Retry-After"); ra != "4" {
		t.Errorf("Retry-After = %q, want 4 (the 1st request leaves the window in 4 s)", ra)
	}
	clock.Advance(4 * time.Second) // the 1st request (t=0) leaves the 5 s window
	expect("after the window slides", 200)
	expect("budget spent again", 429)
	clock.Advance(time.Second) // the 2nd (t=1) leaves
	expect("after one more second", 200)
	var statuses []int
	for _, r := range s.Requests() {
		statuses = append(statuses, r.Status)
	}
	if got := mustJSON(t, statuses); got != "[200,200,401,500,404,429,429,200,429,200]" {
		t.Errorf("statuses = %s", got)
	}
}

func TestAccountLimitDefault(t *testing.T) {
	clock := newFakeClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	s := plivotest.NewServer(plivotest.WithSampleMPC(), plivotest.WithClock(clock.Now))
	defer s.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 80 {
				r, err := doCtx(context.Background(), s, call{method: "GET", path: sample + "Participant/"})
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				mu.Lock()
				counts[r.status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if counts[200] != 300 || counts[429] != 20 {
		t.Errorf("statuses = %v, want 300×200 and 20×429 (Plivo's 300 per 5 s)", counts)
	}
	clock.Advance(5 * time.Second)
	if r := do(t, s, call{method: "GET", path: sample}); r.status != 200 {
		t.Errorf("after 5 s: %d", r.status)
	}

	off := plivotest.NewServer(plivotest.WithSampleMPC(), plivotest.WithClock(clock.Now), plivotest.WithAccountLimit(0, time.Second))
	defer off.Close()
	for i := range 400 {
		if r := do(t, off, call{method: "GET", path: sample}); r.status != 200 {
			t.Fatalf("limit disabled, request %d: %d", i, r.status)
		}
	}
}

func TestLogLimit(t *testing.T) {
	s := plivotest.NewServer(plivotest.WithSampleMPC(), plivotest.WithLogLimit(5))
	defer s.Close()
	for range 23 {
		do(t, s, call{method: "GET", path: sample + "Participant/"})
	}
	do(t, s, muteCustomer)
	log := s.Requests()
	if len(log) < 5 || len(log) >= 10 {
		t.Errorf("log holds %d requests, want 5–9", len(log))
	}
	if last := log[len(log)-1]; last.Method != http.MethodPost || !last.Applied {
		t.Errorf("last entry = %+v, want the update", last)
	}
	s.ResetLog()
	if n := s.RequestCount(); n != 0 {
		t.Errorf("after ResetLog: %d", n)
	}
	// Requests returns copies.
	do(t, s, muteCustomer)
	a := s.Requests()
	a[0].Body[0] = 'X'
	if b := s.Requests(); b[0].Body[0] != '{' {
		t.Error("Requests shares Body with the log")
	}
}

// TestConcurrentUse mixes updates, reads over HTTP and the Go state and log
// API from several goroutines (meaningful under -race).
func TestConcurrentUse(t *testing.T) {
	s := plivotest.NewServer(plivotest.WithSampleMPC(), plivotest.WithAccountLimit(0, 0))
	defer s.Close()
	const workers, perWorker = 6, 30
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				var c call
				switch i % 3 {
				case 0:
					c = call{method: "POST", path: sample + "Participant/" + []string{customer, agent, supervisor}[w%3] + "/", body: `{"hold":true}`}
				case 1:
					c = call{method: "GET", path: sample + "Participant/"}
				default:
					s.Participants(plivotest.SampleMPCName)
					s.Requests()
					c = call{method: "GET", path: sample}
				}
				r, err := doCtx(context.Background(), s, c)
				if err != nil || r.status != 200 {
					t.Errorf("worker %d request %d: %v %d %s", w, i, err, r.status, r.raw)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got, want := len(s.AppliedUpdates()), workers*perWorker/3; got != want {
		t.Errorf("AppliedUpdates = %d, want %d", got, want)
	}
	if got := s.RequestCount(); got != workers*perWorker {
		t.Errorf("RequestCount = %d, want %d", got, workers*perWorker)
	}
	for _, p := range s.Participants(plivotest.SampleMPCName) {
		if !p.Hold {
			t.Errorf("member %s not on hold", p.MemberID)
		}
	}
}

// SentDuringPause finds the latest 429 and the requests that arrived after
// it within the pause, and says when there was no 429 at all.
func TestSentDuringPause(t *testing.T) {
	t.Parallel()
	s := plivotest.NewServer(plivotest.WithSampleMPC())
	defer s.Close()
	do(t, s, muteCustomer)
	if _, _, ok := s.SentDuringPause(time.Hour); ok {
		t.Fatal("SentDuringPause found a 429 where none was answered")
	}
	s.FailNext(1, plivotest.Fault{Status: 429, RetryAfter: "2"})
	do(t, s, muteCustomer) // the 429
	do(t, s, muteCustomer) // after it
	do(t, s, muteCustomer)
	at, inside, ok := s.SentDuringPause(time.Hour)
	if !ok {
		t.Fatal("SentDuringPause found no 429")
	}
	reqs := s.Requests()
	if !at.Equal(reqs[1].Time) {
		t.Errorf("429 at %v, want the second request's %v", at, reqs[1].Time)
	}
	if len(inside) != 2 || inside[0].Status != 200 || !inside[0].Time.Equal(reqs[2].Time) {
		t.Errorf("inside an hour's pause: %+v, want the two requests after the 429", inside)
	}
	if _, inside, _ := s.SentDuringPause(0); len(inside) != 0 {
		t.Errorf("inside a zero pause: %d requests, want none", len(inside))
	}
}
