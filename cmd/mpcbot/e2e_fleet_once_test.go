package main

import (
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// An envelope Slack redelivers to another replica's connection runs once
// across the fleet: one Plivo call, one anchor, one reply, one audit
// record. The redeliveries go out while the first delivery is still being
// served (Plivo answers slowly), as when Slack thinks an ack was lost, and
// once more after it finished. (Exactly once holds while Redis answers: a
// try during which a replica degraded is not counted, see fleetSerial.)
func TestFleetRedeliveredEnvelopeRunsOnce(t *testing.T) {
	// Serial: see fleetSerial.
	w := startFleet(t)
	rs := w.startReplicas(2)
	w.plivo.SetDelay(300 * time.Millisecond)
	for try, action := range []string{"hold", "unhold", "hold"} {
		mark := w.degradeMark()
		checkRedelivery(t, w, rs, action)
		if !w.degradedSince(mark) {
			return
		}
		t.Logf("try %d not counted: a replica degraded during it", try+1)
	}
	t.Fatal("a replica degraded during each try: machine too busy to test exactly once")
}

// checkRedelivery types action on the sample MPC's customer, redelivers the
// envelope until a delivery reaches the other replica, and checks that it
// ran once.
func checkRedelivery(t *testing.T, w *fleetWorld, rs []*replica, action string) {
	t.Helper()
	a := rs[0]
	customer := a.member("customer")
	describe := action + " member " + customer + " in test_mpc_1"
	before := len(w.plivo.Requests())
	since := time.Now()
	id, _ := a.slash(supervisorID, channelID, action+" test_mpc_1 "+customer)
	first := w.deliveredTo(id)[0]

	// Redeliver until a delivery reaches the other replica (each goes to a
	// connection other than the previous one's: two of three are the
	// other replica's).
	var to []string
	for n := 2; ; n++ {
		if err := w.slack.Redeliver(id); err != nil {
			t.Fatal(err)
		}
		to = w.waitDeliveries(id, n)
		if to[n-1] != first && to[n-1] != "" {
			break
		}
		if n == 20 {
			t.Fatalf("20 redeliveries never reached a replica other than %s: %v", first, to)
		}
	}
	// Either delivery may win the fleet-wide claim (the first one's worker
	// claims a little after its ack); the other replica drops the envelope
	// on that claim, not on its own memory (it never saw the id before).
	rec, who := w.auditOnce(id)
	if rec["status"] != "ok" {
		t.Fatalf("audit %v by replica %s, want status ok", rec, who)
	}
	other := rs[0]
	if other.name == who {
		other = rs[1]
	}
	waitUntil(t, waitFor, "replica "+other.name+" to drop the envelope on the fleet-wide claim", func() bool {
		for _, l := range other.logLines("ignored an envelope another connection or replica took") {
			if strings.Contains(l, id) {
				return true
			}
		}
		return false
	})
	anchor, reply := a.anchorAndReply(since, channelID, describe)
	if !strings.Contains(reply.Text, "✅ "+action) {
		t.Fatalf("reply %q, want a ✅ %s", reply.Text, action)
	}
	// After it finished, one more redelivery: still nothing new.
	if err := w.slack.Redeliver(id); err != nil {
		t.Fatal(err)
	}
	to = w.waitDeliveries(id, len(to)+1)
	if n := len(a.updateRequests(before)); n != 1 {
		t.Fatalf("%d Plivo updates for one command delivered %d times (to %v), want 1", n, len(to), to)
	}
	if n := len(w.slack.ThreadReplies(channelID, anchor.TS)); n != 1 {
		t.Fatalf("%d replies in the thread, want 1", n)
	}
	if n := countAnchors(a.harness, describe, since); n != 1 {
		t.Fatalf("%d anchors, want 1", n)
	}
	if n := len(w.auditsOf(id)); n != 1 {
		t.Fatalf("audit records on %d replicas, want 1", n)
	}
	if st := w.slack.Stats(); st.AckTimeouts != 0 || st.DispatchFailed != 0 {
		t.Fatalf("stats %+v: every delivery should be acked in time", st)
	}
}

// The same button tapped twice by the same user, the taps landing on two
// replicas, makes one Plivo call; the other tap is told "tapped twice".
// Taps go to a connection at random, so pairs are tapped (each pair on the
// latest result's button) until one pair lands on two replicas; every pair
// must run once either way (unless a replica degraded meanwhile, see
// fleetSerial).
func TestFleetDoubleTapAcrossReplicas(t *testing.T) {
	// Serial: see fleetSerial.
	w := startFleet(t, withFleetEnv("MPC_DOUBLE_TAP_WINDOW", "1m"))
	rs := w.startReplicas(2)
	h := rs[0]
	customer := h.member("customer")
	since := time.Now()
	h.slash(supervisorID, channelID, "mute test_mpc_1 "+customer)
	_, result := h.anchorAndReply(since, channelID, "mute member "+customer)
	next := map[string]string{"mute": "unmute", "unmute": "mute"}
	action := "unmute" // the button on the latest result
	split := false
	for pair := 1; !split; pair++ {
		if pair > 20 {
			t.Fatal("20 pairs of taps never landed on two replicas (with Redis answering)")
		}
		label := strings.ToUpper(action[:1]) + action[1:] + " " + customer
		mark := w.degradeMark()
		before := len(w.plivo.Requests())
		since := time.Now()
		tap1 := h.click(supervisorID, result, label)
		tap2 := h.click(supervisorID, result, label)
		on := []string{w.deliveredTo(tap1)[0], w.deliveredTo(tap2)[0]}
		rec1, _ := w.auditOnce(tap1)
		rec2, _ := w.auditOnce(tap2)
		result = h.waitMessage(func(m slacktest.Message) bool {
			return m.Method == "chat.postMessage" && m.ThreadTS == result.ThreadTS && !m.Time.Before(since) &&
				strings.Contains(m.Text, "✅ "+action)
		}, "the result of pair "+label)
		action = next[action]
		if w.degradedSince(mark) {
			t.Logf("pair %d not counted: a replica degraded during it (see fleetSerial)", pair)
			continue
		}
		split = on[0] != on[1] && on[0] != "" && on[1] != ""

		// One tap ran (its result is in the thread), the other is told.
		statuses := []any{rec1["status"], rec2["status"]}
		dup := tap2
		if rec1["status"] == "duplicate" {
			dup = tap1
		}
		if !(statuses[0] == "ok" && statuses[1] == "duplicate") && !(statuses[0] == "duplicate" && statuses[1] == "ok") {
			t.Fatalf("pair %d (on %v): statuses %v, want one ok and one duplicate", pair, on, statuses)
		}
		if note := h.responseFor(dup); !note.Ephemeral || !strings.Contains(note.Text, "tapped that twice") {
			t.Fatalf("pair %d: the duplicate tap was answered %q (ephemeral %v)", pair, note.Text, note.Ephemeral)
		}
		if n := len(h.updateRequests(before)); n != 1 {
			t.Fatalf("pair %d (taps on replicas %v): %d Plivo updates, want 1", pair, on, n)
		}
		t.Logf("pair %d: taps on replicas %v", pair, on)
	}
}

// A stranger's refused tap does not block a supervisor's tap of the same
// button, whichever replicas they land on: the double-tap claim is taken
// only for a tap that is going to run.
func TestFleetStrangerTapDoesNotBlock(t *testing.T) {
	// Serial: see fleetSerial.
	w := startFleet(t, withFleetEnv("MPC_DOUBLE_TAP_WINDOW", "1m"))
	rs := w.startReplicas(2)
	h := rs[0]
	customer := h.member("customer")
	since := time.Now()
	h.slash(supervisorID, channelID, "hold test_mpc_1 "+customer)
	_, result := h.anchorAndReply(since, channelID, "hold member "+customer)
	before := len(w.plivo.Requests())
	since = time.Now()
	// The stranger taps first and is refused before the supervisor taps.
	stranger := h.click(strangerID, result, "Unhold "+customer)
	if m := h.responseFor(stranger); !m.Ephemeral || m.User != strangerID || !strings.Contains(m.Text, "not allowed") {
		t.Fatalf("the stranger's tap was answered %+v, want an ephemeral refusal", m)
	}
	super := h.click(supervisorID, result, "Unhold "+customer)
	h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "chat.postMessage" && m.ThreadTS == result.ThreadTS && !m.Time.Before(since) &&
			strings.Contains(m.Text, "✅ unhold")
	}, "the supervisor's unhold in the thread")
	if rec, _ := w.auditOnce(super); rec["status"] != "ok" {
		t.Fatalf("supervisor's tap audited %v, want ok", rec)
	}
	if rec, _ := w.auditOnce(stranger); rec["status"] != "refused" {
		t.Fatalf("stranger's tap audited %v, want refused", rec)
	}
	if n := len(h.updateRequests(before)); n != 1 {
		t.Fatalf("%d Plivo updates, want 1 (the supervisor's)", n)
	}
	if st, _ := w.plivo.Participant(plivotest.SampleMPCName, customer); st.Hold {
		t.Fatal("the customer is still on hold")
	}
	t.Logf("stranger's tap on %v, supervisor's on %v", w.deliveredTo(stranger), w.deliveredTo(super))
}
