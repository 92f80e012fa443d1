package main

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
)

// commandFlow types one change a member every interval, in the
// background, until stopped or out of members.
type commandFlow struct {
	w       *fleetWorld
	mpc     string
	members []string

	mu       sync.Mutex
	ids      []string
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// startFlow starts typing "hold <mpc> <member>" for each member in turn,
// one every interval; it stops at the end of the test if not before.
func startFlow(w *fleetWorld, mpc string, members []string, every time.Duration) *commandFlow {
	f := &commandFlow{w: w, mpc: mpc, members: members, stop: make(chan struct{}), done: make(chan struct{})}
	w.t.Cleanup(func() { f.end() })
	go func() {
		defer close(f.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for f.next() {
			select {
			case <-f.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return f
}

// next types the change of the next member; false when none is left.
func (f *commandFlow) next() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ids) == len(f.members) {
		return false
	}
	m := f.members[len(f.ids)]
	f.ids = append(f.ids, f.w.slack.SendSlashCommand(slacktest.SlashCommand{UserID: supervisorID, ChannelID: channelID, Text: "hold " + f.mpc + " " + m}))
	return true
}

// burst types n changes at once (fewer if the members run out).
func (f *commandFlow) burst(n int) {
	for range n {
		f.next()
	}
}

// sent returns how many commands were typed so far.
func (f *commandFlow) sent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ids)
}

// waitMore waits until n more commands were typed.
func (f *commandFlow) waitMore(n int) {
	f.w.t.Helper()
	want := f.sent() + n
	waitUntil(f.w.t, waitFor, fmt.Sprintf("%d commands typed", want), func() bool { return f.sent() >= want })
}

// end stops typing and returns the members and envelope ids typed.
func (f *commandFlow) end() (members, ids []string) {
	f.stopOnce.Do(func() { close(f.stop) })
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.members[:len(f.ids)], f.ids
}

// No gap: every Socket Mode connection of a two-replica fleet is refreshed
// in turn (one at a time, every other one with Slack's warning first)
// while changes keep coming, a burst of them the moment each link is gone.
// The app always has an open connection, so no user sees dispatch_failed,
// every envelope is acked in time, and every change has exactly one
// visible outcome (one anchor, one ✅ reply in its thread).
//
// The flow pauses from each refresh (once what it sent is acked) until the
// old link is closed, because of two known losses there (see the h-fleete2e report): slack-go drops the
// envelopes it reads after a warning though Slack keeps delivering until
// the refresh, and the ack of an envelope delivered in a link's last
// millisecond goes out on the closed link (the change runs, Slack shows a
// timeout). Neither is a gap between connections, which this test is about.
func TestFleetRefreshNoGap(t *testing.T) {
	// Serial: see fleetSerial.
	w := startFleet(t, withFleetEnv("PLIVO_RATE", "50", "PLIVO_BURST", "20"))
	rs := w.startReplicas(2)
	members := w.addMembers("refresh_mpc", 400)
	flow := startFlow(w, "refresh_mpc", members, 40*time.Millisecond)
	flow.waitMore(5)
	originals := w.slack.OpenConnections()
	for i, c := range originals {
		owner := w.replica(w.ownerOf(c.ID))
		before := time.Now()
		warn := i%2 == 1
		func() {
			flow.mu.Lock() // pause the flow (see above)
			defer flow.mu.Unlock()
			for _, id := range flow.ids {
				if _, err := w.slack.WaitAck(ctxWithTimeout(t, waitFor), id); err != nil {
					t.Fatalf("before refreshing connection %d: %v", c.ID, err)
				}
			}
			if err := w.slack.RefreshConnection(c.ID, warn); err != nil {
				t.Fatalf("refresh connection %d: %v", c.ID, err)
			}
			waitUntil(t, waitFor, fmt.Sprintf("connection %d to close", c.ID), func() bool {
				return !w.connection(c.ID).ClosedAt.IsZero()
			})
		}()
		// The moment that matters: the link is gone, its replacement not
		// yet there.
		flow.burst(5)
		owner.waitNewConnection(before) // and the owner has all its connections again
		w.adopt(owner.name)
		t.Logf("connection %d of replica %s refreshed (warning first: %v)", c.ID, owner.name, warn)
		flow.waitMore(5)
	}
	members, ids := flow.end()
	served := waitChanges(w, "hold", "refresh_mpc", members, ids, "✅ hold")
	t.Logf("%d changes during %d refreshes, served by replica: %v", len(ids), len(originals), countBy(served))
	st := w.slack.Stats()
	if st.DispatchFailed != 0 || st.AckTimeouts != 0 || st.Lost != 0 {
		t.Fatalf("stats %+v: want no dispatch_failed, no ack timeout, nothing lost", st)
	}
	for _, ci := range w.slack.Connections() {
		for _, o := range originals {
			if ci.ID == o.ID && ci.Live {
				t.Errorf("connection %d was not refreshed: %+v", ci.ID, ci)
			}
		}
	}
	for _, r := range rs {
		if n, want := r.main.Bot.OpenConnections(), r.main.Config.SlackConnections; n != want {
			t.Errorf("replica %s has %d connections open at the end, want %d", r.name, n, want)
		}
	}
}
