package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// updateKey identifies an update: the participant path and the fields set.
func updateKey(path string, body []byte) string {
	var fields map[string]bool
	_ = json.Unmarshal(body, &fields)
	keys := slices.Sorted(maps.Keys(fields))
	var b strings.Builder
	b.WriteString(path[strings.Index(path, "/MultiPartyCall/"):])
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, fields[k])
	}
	return b.String()
}

// changeKeys returns the update keys a change makes when it succeeds.
func changeKeys(c commands.Change) []string {
	body, _ := json.Marshal(c.Update())
	var keys []string
	for _, m := range c.Members {
		keys = append(keys, updateKey("/MultiPartyCall/"+c.MPC.PathSegment()+"/Participant/"+string(m)+"/", body))
	}
	return keys
}

// loadCommand is one request of the mixed run and what must come of it.
type loadCommand struct {
	user   string
	typed  string          // typed text, or
	click  commands.Change // a clicked change
	ts     string          // the message clicked on (its thread gets the result)
	value  string          // the clicked button's value, the same for both taps of a pair
	pairOf int             // a second tap of the click at this index, or -1
	want   string          // ok, refused, not_found, usage, list, duplicate
	keys   []string        // updates applied when ok
	anchor string          // exact text of a typed change's anchor
	id     string          // envelope id
}

// Timings of TestFaultMixedRun. An attempt the client gives up on while
// the simulator is still at it (a stalled process on a busy machine) can
// be applied after the client has read the state back and resent it: one
// update applied twice. So ordinary answers get a wide margin below
// mixedPlivoTimeout, and the injected timeouts one above it.
const (
	mixedPlivoTimeout = 3 * time.Second
	mixedNoAnswer     = 5 * time.Second
)

// A thousand commands mixing every fault: Plivo 429 (with and without
// Retry-After), 5xx, timeouts, dropped connections and slow answers; Slack
// 429 and 5xx on posts and response_url; socket drops; redeliveries;
// double taps; several users, one unauthorised; typed and clicked. Every
// command ends in exactly one visible outcome, and Plivo never applies the
// same update twice: every applied update belongs to one distinct
// successful command.
//
// Not parallel: it is a load test. It keeps both CPUs busy and checks that
// every envelope is acked within Slack's 3 s, which measures the machine
// rather than the bot when other tests run beside it (and slows them).
func TestFaultMixedRun(t *testing.T) {
	total := 1000
	if testing.Short() {
		total = 200
	}
	const wave = 40 // commands sent before waiting for their acks
	h := startBot(t, withPlivo(plivotest.WithAccountLimit(100000, 5*time.Second)), withEnv(
		"PLIVO_RATE", "1000", "PLIVO_BURST", "1000", "PLIVO_TIMEOUT", mixedPlivoTimeout.String(), "LOG_LEVEL", "info"))
	rng := rand.New(rand.NewPCG(5, 1000))

	// 60 calls of five: every change below is to a distinct (call, member
	// or all, fields), so an update applied twice would show.
	type target struct{ mpc, member, role string }
	var positive, negative []commands.Change
	for i := range 60 {
		name := fmt.Sprintf("load_mpc_%02d", i)
		h.plivo.AddMPC(name)
		mpc, _ := plivo.MPCByName(name)
		var members []target
		for _, role := range []string{plivotest.RoleCustomer, plivotest.RoleAgent, plivotest.RoleAgent, plivotest.RoleSupervisor, plivotest.RoleCustomer} {
			members = append(members, target{name, h.plivo.AddParticipant(name, role), role})
		}
		sets := [][]commands.Action{{commands.Mute}, {commands.Hold}, {commands.Mute, commands.Hold}}
		for _, m := range members {
			for _, s := range sets {
				c := commands.Change{Actions: s, MPC: mpc, Members: []plivo.Member{plivo.Member(m.member)}}
				positive = append(positive, c)
				negative = append(negative, c.Inverse())
			}
			if m.role == plivotest.RoleSupervisor {
				c := commands.Change{Actions: []commands.Action{commands.Coach}, MPC: mpc, Members: []plivo.Member{plivo.Member(m.member)}}
				positive = append(positive, c)
				negative = append(negative, c.Inverse())
			}
		}
		for _, s := range sets {
			c := commands.Change{Actions: s, MPC: mpc, Members: []plivo.Member{plivo.AllMembers}}
			positive = append(positive, c)
			negative = append(negative, c.Inverse())
		}
	}
	rng.Shuffle(len(positive), func(i, j int) { positive[i], positive[j] = positive[j], positive[i] })
	rng.Shuffle(len(negative), func(i, j int) { negative[i], negative[j] = negative[j], negative[i] })

	// The requests.
	cmds := make([]loadCommand, 0, total)
	users := []string{supervisorID, supervisorID, supervisorID, agentID, strangerID}
	wantFor := func(user string, c commands.Change) string {
		switch {
		case user == strangerID:
			return "refused"
		case user == agentID && c.Coaching():
			return "refused"
		}
		return "ok"
	}
	for len(cmds) < total {
		user := users[rng.IntN(len(users))]
		lc := loadCommand{user: user, pairOf: -1}
		switch r := rng.Float64(); {
		case r < 0.70:
			c := positive[0]
			positive = positive[1:]
			lc.typed, lc.want, lc.keys = c.Text(), wantFor(user, c), changeKeys(c)
			lc.anchor = fmt.Sprintf("<@%s> asked: %s", user, c.Describe())
		case r < 0.88:
			c := negative[0]
			negative = negative[1:]
			lc.click, lc.want, lc.keys = c, wantFor(user, c), changeKeys(c)
			if rng.IntN(10) == 0 && len(cmds)+1 < total && len(cmds)%wave != wave-1 {
				// A double tap: the same button twice, in the same wave
				// (a wave may wait for a reconnect).
				lc.user = supervisorID
				lc.want = "ok"
				cmds = append(cmds, lc)
				cmds = append(cmds, loadCommand{user: supervisorID, click: c, pairOf: len(cmds) - 1, want: "duplicate"})
				continue
			}
		case r < 0.93:
			mpc := fmt.Sprintf("load_mpc_%02d", rng.IntN(60))
			lc.typed, lc.want = fmt.Sprintf("mute %s %d", mpc, 900+len(cmds)), "not_found"
			if user == strangerID {
				lc.want = "refused"
			}
			c, _ := commands.Parse(lc.typed)
			lc.anchor = fmt.Sprintf("<@%s> asked: %s", user, c.(commands.Change).Describe())
		case r < 0.97:
			lc.typed, lc.want = fmt.Sprintf("list load_mpc_%02d", rng.IntN(60)), "list"
			if user == strangerID {
				lc.want = "refused"
			}
		default:
			lc.typed, lc.want = fmt.Sprintf("mtue load_mpc_%02d 101", rng.IntN(60)), "usage"
		}
		if lc.want != "ok" {
			lc.keys = nil
		}
		cmds = append(cmds, lc)
	}

	plivoFaults := []plivotest.Fault{
		{Status: 429, RetryAfter: "1"}, {Status: 429}, {Status: 500}, {Status: 502}, {Status: 503},
		{Delay: mixedNoAnswer},          // longer than PLIVO_TIMEOUT: abandoned, not applied
		{Delay: 300 * time.Millisecond}, // slow but in time
		{Drop: true},
		// Applied, but the answer is lost: the client must confirm by
		// reading back, never send the same update again.
		{Status: 503, Apply: true}, {Status: 500, Apply: true}, {Drop: true, Apply: true},
		{Delay: mixedNoAnswer, Apply: true},
	}
	slackFaults := []struct {
		method  string
		failure slacktest.Failure
	}{
		{"chat.postMessage", slacktest.Failure{Status: 429, RetryAfter: 1}},
		{"chat.postMessage", slacktest.Failure{Status: 503}},
		{"response_url", slacktest.Failure{Status: 502}},
	}

	waves := (total + wave - 1) / wave
	dropAfter := map[int]bool{waves / 3: true, 2 * waves / 3: true}
	redeliverAfter := map[int]bool{waves / 4: true, waves / 2: true}
	redelivered := map[string]bool{}
	start := time.Now()
	for w := 0; w*wave < total; w++ {
		batch := cmds[w*wave : min((w+1)*wave, total)]
		for i := range batch {
			lc := &batch[i]
			if rng.IntN(100) < 12 {
				h.plivo.FailNext(1, plivoFaults[rng.IntN(len(plivoFaults))])
			}
			if rng.IntN(100) < 3 {
				f := slackFaults[rng.IntN(len(slackFaults))]
				h.slack.FailNext(f.method, 1, f.failure)
			}
			switch {
			case lc.typed != "":
				lc.id = h.slack.SendSlashCommand(slacktest.SlashCommand{UserID: lc.user, ChannelID: channelID, Text: lc.typed})
			default:
				if lc.pairOf >= 0 {
					// The same button: its value was made once, when the
					// message was posted (it holds a time in seconds).
					lc.ts, lc.value = cmds[lc.pairOf].ts, cmds[lc.pairOf].value
				} else {
					lc.ts = h.slack.AddUserMessage(channelID, supervisorID, "results with buttons")
					lc.value = commands.EncodeButton(lc.click, time.Now())
				}
				lc.id = h.slack.SendBlockAction(slacktest.BlockAction{UserID: lc.user, ChannelID: channelID, MessageTS: lc.ts,
					ActionID: "mpc.run:0", Value: lc.value})
			}
		}
		for _, lc := range batch {
			ack, err := h.slack.WaitAck(h.ctx(), lc.id)
			if err != nil {
				t.Fatalf("command %q (wave %d): %v", lc.typed, w, err)
			}
			if ack.Late {
				t.Errorf("command %q acked after %v (Slack showed an error)", lc.typed, ack.Latency)
			}
		}
		if redeliverAfter[w] {
			for range 2 {
				id := cmds[rng.IntN((w+1)*wave)].id
				if redelivered[id] {
					continue
				}
				redelivered[id] = true
				dups := h.slack.Stats().DuplicateAcks
				if err := h.slack.Redeliver(id); err != nil {
					t.Fatal(err)
				}
				h.waitStats("the redelivery acked", func(st slacktest.Stats) bool { return st.DuplicateAcks > dups })
			}
		}
		if dropAfter[w] {
			at := time.Now()
			h.slack.DropConnections()
			h.waitNewConnection(at)
		}
	}
	sent := time.Since(start)

	// Every command is finished once its audit record is written. The log
	// is long: each look reads only the lines written since the last.
	pending := map[string]bool{}
	for _, lc := range cmds {
		pending[lc.id] = true
	}
	t.Cleanup(func() {
		if len(pending) > 0 {
			t.Logf("%d commands never finished, e.g. %v", len(pending), slices.Collect(maps.Keys(pending))[:1])
		}
	})
	read := 0 // bytes of the log looked at, whole lines only
	waitUntil(t, 60*time.Second, fmt.Sprintf("all %d commands to finish (their audit records)", total), func() bool {
		log := h.logs.String()
		end := strings.LastIndexByte(log, '\n') + 1
		for _, rec := range auditRecordsIn(log[read:end]) {
			if id, ok := rec["envelope_id"].(string); ok {
				delete(pending, id)
			}
		}
		read = end
		return len(pending) == 0
	})
	t.Logf("%d commands sent in %v, all finished after %v; %d Plivo requests; Slack stats %+v",
		total, sent.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), h.plivo.RequestCount(), h.slack.Stats())

	// What users saw.
	byEnvelope := map[string][]slacktest.Message{}
	for _, m := range h.slack.Messages() {
		if m.EnvelopeID != "" {
			byEnvelope[m.EnvelopeID] = append(byEnvelope[m.EnvelopeID], m)
		}
	}
	anchors := map[string][]slacktest.Message{}
	for _, m := range h.slack.MessagesIn(channelID) {
		if m.ThreadTS == "" {
			anchors[m.Text] = append(anchors[m.Text], m)
		}
	}
	wantMark := map[string]string{"ok": "✅", "refused": "⛔", "not_found": "❌", "usage": "❌", "list": "Participants of", "duplicate": "tapped that twice"}
	// Changes whose lost answer was settled by reading the state back: the
	// state was already right, so Plivo may have applied nothing for them.
	confirmedByRead := map[int]bool{}
	defer func() { t.Logf("%d changes settled by reading the state back", len(confirmedByRead)) }()
	for i, lc := range cmds {
		what := lc.typed
		if what == "" {
			what = "click " + lc.click.Text()
		}
		seen := byEnvelope[lc.id]
		switch {
		case lc.typed != "" && lc.anchor != "" && (lc.want == "ok" || lc.want == "not_found"):
			as := anchors[lc.anchor]
			if len(as) > 1 {
				t.Errorf("%d: %q: %d anchors", i, what, len(as))
			}
			for _, a := range as {
				seen = append(seen, h.slack.ThreadReplies(channelID, a.TS)...)
			}
		case lc.pairOf >= 0:
			continue // counted with the first tap
		case lc.typed == "":
			seen = append(seen, h.slack.ThreadReplies(channelID, lc.ts)...)
			if i+1 < len(cmds) && cmds[i+1].pairOf == i {
				seen = append(seen, byEnvelope[cmds[i+1].id]...)
				if len(seen) == 2 && !strings.Contains(seen[0].Text+seen[1].Text, wantMark["duplicate"]) {
					t.Errorf("%d: %q tapped twice: no notice for the second tap: %q", i, what, seen[1].Text)
				}
			}
		}
		want := 1
		if i+1 < len(cmds) && cmds[i+1].pairOf == i {
			want = 2
		}
		for _, m := range seen {
			if strings.Contains(m.Text, "reading the state back") {
				confirmedByRead[i] = true
			}
		}
		if len(seen) != want {
			var texts []string
			for _, m := range seen {
				texts = append(texts, m.Method+": "+m.Text)
			}
			t.Errorf("%d: %q by %s: %d visible outcomes, want %d: %q", i, what, lc.user, len(seen), want, texts)
			continue
		}
		if !strings.Contains(seen[0].Text, wantMark[lc.want]) && (want == 1 || !strings.Contains(seen[1].Text, wantMark[lc.want])) {
			t.Errorf("%d: %q by %s: want %s, saw %q", i, what, lc.user, lc.want, seen[0].Text)
		}
	}
	if st := h.slack.Stats(); st.AckTimeouts != 0 {
		t.Errorf("%d envelopes not acked in time", st.AckTimeouts)
	}

	// What Plivo applied: each update once, and only those of successful commands.
	applied := map[string]int{}
	for _, r := range h.plivo.AppliedUpdates() {
		applied[updateKey(r.Path, r.Body)]++
	}
	expected := map[string]bool{}  // applied by exactly one successful command
	mustApply := map[string]bool{} // …and not settled by reading back
	for i, lc := range cmds {
		for _, k := range lc.keys {
			expected[k] = true
			if !confirmedByRead[i] {
				mustApply[k] = true
			}
		}
	}
	for k, n := range applied {
		switch {
		case n > 1:
			t.Errorf("Plivo applied %s %d times", k, n)
		case !expected[k]:
			t.Errorf("Plivo applied %s, which no successful command asked for", k)
		}
	}
	for k := range mustApply {
		if applied[k] == 0 {
			t.Errorf("%s was never applied", k)
		}
	}
	t.Logf("%d distinct updates applied for %d successful changes", len(applied), len(expected))

	// The faults were really met, not just queued.
	statuses := map[int]int{}
	for _, r := range h.plivo.Requests() {
		if r.Fault {
			statuses[r.Status]++
		}
	}
	t.Logf("Plivo faults served by status (0 = no answer): %v; Slack failures: chat.postMessage %d, response_url %d",
		statuses, failedCalls(h, "chat.postMessage"), failedCalls(h, "response_url"))
	for _, st := range []int{0, 200, 429, 500, 502, 503} {
		if statuses[st] == 0 {
			t.Errorf("no Plivo fault answered with status %d: the mix did not exercise it", st)
		}
	}
	if failedCalls(h, "chat.postMessage") == 0 || failedCalls(h, "response_url") == 0 {
		t.Error("the Slack faults were not exercised")
	}
}
