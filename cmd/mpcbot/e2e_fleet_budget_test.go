package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// sendChanges types "<action> <mpc> <member>" for each member as fast as
// the fake takes them (the envelopes spread over every replica's
// connections) and returns the envelope ids in member order.
func sendChanges(w *fleetWorld, action, mpc string, members []string) []string {
	w.t.Helper()
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = w.slack.SendSlashCommand(slacktest.SlashCommand{UserID: supervisorID, ChannelID: channelID,
			Text: action + " " + mpc + " " + m})
	}
	return ids
}

// waitChanges waits until every change has exactly one audit record across
// the fleet, and checks that each has exactly one anchor with exactly one
// reply in its thread containing want. It returns the replica that served
// each.
func waitChanges(w *fleetWorld, action, mpc string, members, ids []string, want string) []string {
	w.t.Helper()
	served := make([]string, len(ids))
	for i, id := range ids {
		if _, err := w.slack.WaitAck(ctxWithTimeout(w.t, waitFor), id); err != nil {
			rec, _ := w.slack.Envelope(id)
			w.t.Fatalf("command %d (%s %s): %v\ndeliveries %+v (replicas %v)", i, action, members[i], err, rec.Deliveries, w.deliveredTo(id))
		}
		_, served[i] = w.auditOnce(id)
	}
	for i, m := range members {
		describe := action + " member " + m + " in " + mpc
		anchors := anchorsFor(w.slack, describe)
		if len(anchors) != 1 {
			w.t.Fatalf("%d anchors for %q (command %d), want exactly 1", len(anchors), describe, i)
		}
		replies := w.slack.ThreadReplies(channelID, anchors[0].TS)
		if len(replies) != 1 || !strings.Contains(replies[0].Text, want) {
			w.t.Fatalf("thread of %q holds %d replies (%v), want exactly one with %q", describe, len(replies), replies, want)
		}
	}
	return served
}

// countBy counts the occurrences of each string.
func countBy(xs []string) map[string]int {
	out := map[string]int{}
	for _, x := range xs {
		out[x]++
	}
	return out
}

// One budget: three replicas share PLIVO_RATE and PLIVO_BURST. A flood of
// typed changes far above the limit, spread over the replicas, reaches
// Plivo at most burst + rate·T in any window T (several windows checked,
// by the simulator's clock); each replica alone would have let three times
// as many through. The flood saturates the budget (the longest window is
// full), and every command still gets its one ✅ result.
//
// The budget is one only while Redis answers: a flood during which a
// replica degraded (see fleetSerial) proves nothing about it, and is
// flooded again (three tries). A degraded replica sends its whole backlog
// on its own bucket on top of the shared one (see the h-fleete2e report).
func TestFleetOneBudget(t *testing.T) {
	// Serial: see fleetSerial.
	const rate, burst, commands = 4.0, 2, 30
	w := startFleet(t, withFleetEnv("PLIVO_RATE", "4", "PLIVO_BURST", "2", "MPC_COMMAND_TIMEOUT", "30s"))
	rs := w.startReplicas(3)
	w.waitFleetState(rs, true)
	for try := 1; ; try++ {
		mark := w.degradeMark()
		members := w.addMembers(fmt.Sprintf("flood_mpc_%d", try), commands)
		before := len(w.plivo.Requests())
		ids := sendChanges(w, "hold", fmt.Sprintf("flood_mpc_%d", try), members)
		served := waitChanges(w, "hold", fmt.Sprintf("flood_mpc_%d", try), members, ids, "✅ hold")
		times := plivoArrivals(w.plivo)[before:]
		if len(times) != commands {
			t.Fatalf("%d Plivo requests for %d single-member changes, want one each", len(times), commands)
		}
		if w.degradedSince(mark) {
			if try == 3 {
				t.Fatalf("a replica degraded during each of %d floods: machine too busy to test the shared budget", try)
			}
			t.Logf("flood %d not counted: a replica degraded during it", try)
			continue
		}
		byReplica := countBy(served)
		t.Logf("flood %d: commands served by replica %v", try, byReplica)
		if len(byReplica) < 2 {
			t.Fatalf("every command was served by one replica (%v): not a fleet flood", byReplica)
		}
		// Slack 2: a request booked at its slot may reach the simulator up
		// to 2/rate = 500 ms late on a busy machine and land in the next
		// window.
		longest := 4 * time.Second
		got := checkFleetBudget(t, "flood", times, rate, burst, 2, 500*time.Millisecond, time.Second, 2*time.Second, longest)
		if full := burst + int(rate*longest.Seconds()); got < full-2 {
			t.Errorf("busiest %v window held %d requests, want about %d: the flood did not saturate the budget", longest, got, full)
		}
		return
	}
}

// A 429 with Retry-After seen by one replica pauses the whole fleet: the
// changes other replicas take during the pause reach Plivo only once it is
// over, and then succeed. (A replica that degrades during the pause does
// not know of it: such a try is not counted, see fleetSerial.)
func TestFleet429PausesEveryReplica(t *testing.T) {
	// Serial: see fleetSerial.
	const pause = 2 * time.Second
	w := startFleet(t, withFleetEnv("PLIVO_RATE", "50", "PLIVO_BURST", "10"))
	rs := w.startReplicas(3)
	w.waitFleetState(rs, true)
	for try := 1; ; try++ {
		mark := w.degradeMark()
		checkPause(t, w, rs, pause, fmt.Sprintf("pause_mpc_%d", try), try%2 == 1)
		if !w.degradedSince(mark) {
			return
		}
		if try == 3 {
			t.Fatalf("a replica degraded during each of %d pauses: machine too busy to test the shared pause", try)
		}
		t.Logf("pause %d not counted: a replica degraded during it", try)
	}
}

// checkPause makes the simulator answer the next request 429 with
// Retry-After, and checks that no replica sends anything during the pause.
func checkPause(t *testing.T, w *fleetWorld, rs []*replica, pause time.Duration, mpc string, hold bool) {
	t.Helper()
	action := "unhold"
	if hold {
		action = "hold"
	}
	members := w.addMembers(mpc, 20)
	customer := rs[0].member("customer")
	w.plivo.FailNext(1, plivotest.Fault{Status: 429, RetryAfter: fmt.Sprint(pause.Seconds())})
	from := len(w.plivo.Requests())
	since := time.Now()
	first, _ := rs[0].slash(supervisorID, channelID, action+" test_mpc_1 "+customer)
	var got429 time.Time
	waitUntil(t, waitFor, "the simulator to answer 429", func() bool {
		for _, r := range w.plivo.Requests()[from:] {
			if r.Status == 429 {
				got429 = r.Time
				return true
			}
		}
		return false
	})
	paused := w.deliveredTo(first)[0]
	// The pause reaches the fleet when the replica that got the 429 has
	// written it to Redis (it logs right after): a change another replica
	// takes in the milliseconds before that is not paused, by any design.
	waitUntil(t, waitFor, "replica "+paused+" to record the pause", func() bool {
		return len(w.replica(paused).logLines("plivo: 429 with Retry-After; pausing every request")) > 0
	})
	// Changes until one lands on another replica than the paused one
	// (each goes to one of six connections at random).
	var ids, sent []string
	for i := 0; ; i++ {
		if i == len(members) {
			t.Fatalf("%d changes all landed on replica %s", i, paused)
		}
		ids = append(ids, sendChanges(w, "hold", mpc, members[i:i+1])...)
		sent = append(sent, members[i])
		if on := w.waitDeliveries(ids[i], 1); on[0] != paused && on[0] != "" {
			break
		}
	}
	if late := time.Since(got429); late > pause/2 {
		t.Fatalf("the changes went out %v after the 429, too late to test the pause of %v (machine too busy)", late, pause)
	}
	_, reply := rs[0].anchorAndReply(since, channelID, action+" member "+customer+" in test_mpc_1")
	if !strings.Contains(reply.Text, "✅ "+action) {
		t.Fatalf("the change that got the 429 answered %q, want ✅ after its retry", reply.Text)
	}
	served := waitChanges(w, "hold", mpc, sent, ids, "✅ hold")
	t.Logf("429 seen by replica %s; the changes during the pause served by %v", paused, served)
	// Nothing reached Plivo during the pause, from any replica: not the
	// retry, not the other replicas' changes (20 ms for rounding).
	earliest := got429.Add(pause - 20*time.Millisecond)
	_, inside, _ := w.plivo.SentDuringPause(pause - 20*time.Millisecond)
	for _, r := range inside {
		t.Errorf("a Plivo request (%s %s) arrived %v after the 429, within the %v pause", r.Method, r.Path, r.Time.Sub(got429), pause)
	}
	for i, m := range sent {
		if served[i] == paused {
			continue
		}
		for _, r := range w.plivo.Requests()[from:] {
			if strings.Contains(r.Path, "/Participant/"+m+"/") && r.Time.Before(earliest) {
				t.Errorf("replica %s sent its change of %s %v after the 429, within the pause", served[i], m, r.Time.Sub(got429))
			}
		}
	}
}
