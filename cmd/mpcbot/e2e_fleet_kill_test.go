package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/fleet"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// A replica (the real binary, a child process) is SIGKILLed while a
// command it took is in flight; the fleet keeps serving. What the user of
// that command sees, documented here:
//
//   - Slack shows no error: the envelope was acked when it arrived, so
//     Slack does not redeliver it either, and no other replica runs it.
//   - The anchor ("<@user> asked: hold member …") is in the channel, and
//     its thread stays empty: no ✅, no ❌, no "stopped" notice (a killed
//     process says nothing; only SIGTERM drains and tells).
//   - Plivo: if the kill came before the request reached Plivo, nothing
//     changed; if Plivo had already applied it, the change is in place
//     though nobody was told. Either way `/mpc list` shows the truth, and
//     running the command again is safe (the updates are state sets).
//
// The killed replica's connections close with the process, so Slack sends
// everything to the survivor: no dispatch_failed, every later command
// served, and the survivor soon counts one replica alive (the divisor of
// the budget should Redis fail).
func TestFleetReplicaKilledMidCommand(t *testing.T) {
	// Serial: see fleetSerial.
	bin := buildMpcbot(t)
	for _, tc := range []struct {
		name    string
		hold    gateHold
		applied bool // whether Plivo made the change before the kill
	}{
		{"before Plivo got the request", holdRequests, false},
		{"after Plivo applied the change", holdAnswers, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Serial: see fleetSerial.
			w := startFleet(t)
			survivor := w.startReplica("a")
			gate := newPlivoGate(t, w.plivo.URL)
			victim := w.startChild(bin, "k", "PLIVO_API_URL", gate.URL())
			members := w.addMembers("kill_mpc", 20)
			gate.shut(tc.hold)

			// Changes until one lands on the victim and waits at its gate;
			// those the survivor takes are served as usual.
			var inFlight, member string
			for i, m := range members {
				if i == len(members)-1 {
					t.Fatalf("%d changes never reached replica %s", i, victim.name)
				}
				id := w.slack.SendSlashCommand(slacktest.SlashCommand{UserID: supervisorID, ChannelID: channelID, Text: "hold kill_mpc " + m})
				waitUntil(t, waitFor, "the change of "+m+" served or waiting at the gate", func() bool {
					waiting, _ := gate.counts()
					return waiting > 0 || len(survivor.auditRecordsFor(id)) > 0
				})
				if waiting, _ := gate.counts(); waiting > 0 {
					inFlight, member = id, m
					break
				}
			}
			describe := "hold member " + member + " in kill_mpc"
			anchor := survivor.waitMessage(func(m slacktest.Message) bool {
				return m.Method == "chat.postMessage" && m.ThreadTS == "" && strings.Contains(m.Text, describe)
			}, "the anchor of the change in flight")

			victim.kill()
			waitUntil(t, waitFor, "the request in flight to be dropped at the gate", func() bool {
				_, abandoned := gate.counts()
				return abandoned == 1
			})
			waitUntil(t, waitFor, "the killed replica's connections to close", func() bool {
				for _, c := range w.slack.OpenConnections() {
					if w.ownerOf(c.ID) == victim.name {
						return false
					}
				}
				return true
			})

			// The fleet keeps serving: every later change lands on the
			// survivor and succeeds.
			rest := members[len(members)-6:]
			ids := sendChanges(w, "hold", "kill_mpc", rest)
			served := waitChanges(w, "hold", "kill_mpc", rest, ids, "✅ hold")
			for i, who := range served {
				if who != survivor.name {
					t.Errorf("change %d served by %q after the kill, want %s", i, who, survivor.name)
				}
			}
			waitUntil(t, waitFor, "the survivor to count one replica alive", func() bool {
				return metricValue(survivor.scrape(), "mpcbot_fleet_replicas", nil) == 1
			})

			// What the user of the command in flight sees.
			rec, _ := w.slack.Envelope(inFlight)
			if len(rec.Acks) != 1 || rec.TimedOut || rec.DispatchFailed || len(rec.Deliveries) != 1 {
				t.Errorf("envelope in flight: %d deliveries, %d acks, timed out %v, dispatch_failed %v; want acked once, no error, no redelivery",
					len(rec.Deliveries), len(rec.Acks), rec.TimedOut, rec.DispatchFailed)
			}
			if replies := w.slack.ThreadReplies(channelID, anchor.TS); len(replies) != 0 {
				t.Errorf("the thread of the change in flight holds %d replies (%q), want none: the replica died", len(replies), replies[0].Text)
			}
			if n := len(anchorsFor(w.slack, describe)); n != 1 {
				t.Errorf("%d anchors for the change in flight, want 1", n)
			}
			st, _ := w.plivo.Participant("kill_mpc", member)
			if st.Hold != tc.applied {
				t.Errorf("member %s on hold = %v after the kill, want %v", member, st.Hold, tc.applied)
			}
			if audits := w.auditsOf(inFlight); len(audits) != 0 {
				t.Errorf("the change in flight was audited by %v: another replica ran it", audits)
			}
			if st := w.slack.Stats(); st.DispatchFailed != 0 || st.AckTimeouts != 0 {
				t.Errorf("stats %+v: want no dispatch_failed and no ack timeout", st)
			}
		})
	}
}

// A timed hold set on replica A is put back by another replica after A is
// gone: killed with SIGKILL (the real binary as a child process) or closed
// as on SIGTERM (which abandons only timers kept in its own memory). The
// timer lives on Redis; of the two replicas started after A, exactly one
// runs the revert (one Plivo update, one audit record), and it answers in
// the thread of the timed change.
func TestFleetTimerOutlivesItsReplica(t *testing.T) {
	// Serial: see fleetSerial.
	bin := buildMpcbot(t)
	for _, how := range []string{"killed", "closed"} {
		t.Run(how, func(t *testing.T) {
			// Serial: see fleetSerial.
			w := startFleet(t)
			customer := ""
			for _, p := range w.plivo.Participants(plivotest.SampleMPCName) {
				if p.Role == plivotest.RoleCustomer {
					customer = p.MemberID
				}
			}
			text := "hold test_mpc_1 " + customer + " for 3s"
			describe := "hold member " + customer + " in test_mpc_1"
			since := time.Now()
			var id string
			var audit map[string]any
			switch how {
			case "killed":
				a := w.startChild(bin, "a")
				id = w.slack.SendSlashCommand(slacktest.SlashCommand{UserID: supervisorID, ChannelID: channelID, Text: text})
				// The timer is stored (on Redis) before the audit record.
				waitUntil(t, waitFor, "replica a's audit record of the timed hold", func() bool {
					recs := a.auditRecordsFor(id)
					if len(recs) > 0 {
						audit = recs[0]
					}
					return audit != nil
				})
				a.kill()
				if strings.Contains(a.logs.String(), "timer kept in this process only") {
					t.Fatalf("replica a could not store the timer on Redis:\n%s", a.logs.String())
				}
			case "closed":
				a := w.startReplica("a")
				id, _ = a.slash(supervisorID, channelID, text)
				audit = a.auditFor(id)
				w.closeReplica(a)
				if lines := a.logLines("pending timers not run"); len(lines) != 0 {
					t.Fatalf("replica a abandoned the shared timer on shutdown: %s", lines)
				}
			}
			timerID, _ := audit["timer_id"].(string)
			if audit["status"] != "ok" || timerID == "" {
				t.Fatalf("the timed hold was audited %v, want ok with a timer_id", audit)
			}
			anchor, reply := w.anchorIn(since, describe)
			if !strings.Contains(reply.Text, "✅ hold") || !strings.Contains(reply.Text, "⏱") {
				t.Fatalf("the timed hold answered %q, want ✅ and when it is put back", reply.Text)
			}
			if st, _ := w.plivo.Participant(plivotest.SampleMPCName, customer); !st.Hold {
				t.Fatal("the customer is not on hold")
			}
			before := len(w.plivo.Requests())

			rs := w.startReplicas(2) // b and c
			revert := w.waitMessageIn(anchor.TS, "⏱ after 3s: ✅ unhold member "+customer)
			if st, _ := w.plivo.Participant(plivotest.SampleMPCName, customer); st.Hold {
				t.Fatal("the customer is still on hold after the revert")
			}
			// Once the timer is off Redis nobody can claim it again; once b
			// and c have stopped, no revert is still running anywhere.
			waitUntil(t, waitFor, "the timer to be done on Redis", func() bool { return !w.timerOnRedis(timerID) })
			for _, r := range rs {
				w.closeReplica(r)
			}
			runs := w.auditsOf(timerID)
			if len(runs) != 1 {
				t.Fatalf("the revert was audited on %v, want exactly one replica", runs)
			}
			for name, recs := range runs {
				if len(recs) != 1 || recs[0]["status"] != "ok" || recs[0]["source"] != "timer" {
					t.Fatalf("replica %s audited the revert %v, want once, ok, source timer", name, recs)
				}
				t.Logf("timer %s put back by replica %s (a %s)", timerID, name, how)
			}
			var updates []plivotest.Request
			for _, r := range w.plivo.Requests()[before:] {
				if r.Op == plivotest.OpUpdateParticipant {
					updates = append(updates, r)
				}
			}
			if len(updates) != 1 || !strings.Contains(string(updates[0].Body), `"hold":false`) {
				t.Fatalf("Plivo updates after A left: %v, want exactly one unhold", updates)
			}
			if replies := w.slack.ThreadReplies(channelID, anchor.TS); len(replies) != 2 {
				t.Fatalf("%d replies in the thread of the timed hold, want 2 (the result, then the revert %q)", len(replies), revert.Text)
			}
		})
	}
}

// anchorIn waits for the anchor of a change posted after since and its
// first thread reply.
func (w *fleetWorld) anchorIn(since time.Time, describe string) (anchor, reply slacktest.Message) {
	w.t.Helper()
	h := &harness{t: w.t, slack: w.slack}
	return h.anchorAndReply(since, channelID, describe)
}

// waitMessageIn waits for a reply in a thread of the default channel that
// contains text.
func (w *fleetWorld) waitMessageIn(threadTS, text string) slacktest.Message {
	w.t.Helper()
	h := &harness{t: w.t, slack: w.slack}
	return h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "chat.postMessage" && m.ThreadTS == threadTS && strings.Contains(m.Text, text)
	}, fmt.Sprintf("a reply %q in thread %s", text, threadTS))
}

// timerOnRedis reports whether a timer is still stored on the fleet's Redis
// (its hash or its due set).
func (w *fleetWorld) timerOnRedis(id string) bool {
	w.t.Helper()
	opts, err := redis.ParseURL(w.redis.URL())
	if err != nil {
		w.t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := ctxWithTimeout(w.t, 5*time.Second)
	inHash, err := rdb.HExists(ctx, fleet.DefaultPrefix+"timers", id).Result()
	if err != nil {
		w.t.Fatalf("redis HEXISTS: %v", err)
	}
	_, err = rdb.ZScore(ctx, fleet.DefaultPrefix+"timers:due", id).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		w.t.Fatalf("redis ZSCORE: %v", err)
	}
	return inHash || err == nil
}
