package main

import (
	"regexp"
	"strings"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
)

// sentCommand is one /mpc command the load program typed. Every command
// is typed by its own user, so that the anchor message the bot posts
// ("<@U…> asked: …") and the thread under it can be traced back to it.
type sentCommand struct {
	EnvelopeID string
	UserID     string
	Text       string
	// Sent is when SendSlashCommand returned (the envelope was written).
	Sent time.Time
}

// outcome is what a user saw as the answer to one command.
type outcome struct {
	// Kind is "ack" (an ack payload: help, usage error, overloaded),
	// "thread" (a reply under the command's anchor), "response_url",
	// "ephemeral" (chat.postEphemeral), "dispatch_failed" (Slack found no
	// open connection and told the user) or "ack_timeout" (no ack within
	// Slack's 3 s: the user saw Slack's error, whatever came later).
	Kind string
	Text string
	At   time.Time
}

// tally sorts the messages the fake Slack recorded into outcomes per
// command.
type tally struct {
	// Outcomes holds every outcome of each command, by envelope id, in
	// the order Slack recorded them.
	Outcomes map[string][]outcome
	// Anchors counts the anchor messages posted for each command.
	Anchors map[string]int
	// Stray counts messages that answer none of the commands.
	Stray int
	// anchorOwner maps an anchor's ts to the envelope id of its command.
	anchorOwner map[string]string
}

// anchorUser reads the requester out of an anchor's text, "<@U…> asked: …".
var anchorUser = regexp.MustCompile(`^<@([UW][A-Z0-9]+)> (?:asked|clicked):`)

// tallyOutcomes matches msgs to cmds. A command's outcome is an ack
// payload or a response_url message carrying its envelope id, a thread
// reply under the anchor that names its user, or an ephemeral message to
// its user. Anchors themselves are not outcomes: they say what was asked,
// not what happened.
func tallyOutcomes(cmds []sentCommand, msgs []slacktest.Message) tally {
	t := tally{Outcomes: map[string][]outcome{}, Anchors: map[string]int{}, anchorOwner: map[string]string{}}
	byUser := make(map[string]string, len(cmds))
	known := make(map[string]bool, len(cmds))
	for _, c := range cmds {
		byUser[c.UserID] = c.EnvelopeID
		known[c.EnvelopeID] = true
	}
	add := func(envelopeID string, o outcome) {
		if envelopeID == "" || !known[envelopeID] {
			t.Stray++
			return
		}
		t.Outcomes[envelopeID] = append(t.Outcomes[envelopeID], o)
	}
	for _, m := range msgs {
		switch {
		case m.Method == "ack" || m.Method == "response_url" || m.Method == "dispatch_failed":
			add(m.EnvelopeID, outcome{Kind: m.Method, Text: m.Text, At: m.Time})
		case m.Method == "chat.postMessage" && m.ThreadTS == "":
			sub := anchorUser.FindStringSubmatch(m.Text)
			if sub == nil || byUser[sub[1]] == "" {
				t.Stray++
				continue
			}
			t.anchorOwner[m.TS] = byUser[sub[1]]
			t.Anchors[byUser[sub[1]]]++
		case m.Method == "chat.postMessage":
			add(t.anchorOwner[m.ThreadTS], outcome{Kind: "thread", Text: m.Text, At: m.Time})
		case m.Method == "chat.postEphemeral":
			add(byUser[m.User], outcome{Kind: "ephemeral", Text: m.Text, At: m.Time})
		default:
			// chat.update edits a message already counted.
		}
	}
	return t
}

// addAckTimeouts adds an "ack_timeout" outcome to every command whose
// envelope was not acknowledged within Slack's deadline (a delivery
// unacked for 3 s, or a late ack): Slack shows the user an error then.
func (t tally) addAckTimeouts(cmds []sentCommand, records []slacktest.EnvelopeRecord) {
	byID := make(map[string]slacktest.EnvelopeRecord, len(records))
	for _, r := range records {
		byID[r.ID] = r
	}
	for _, c := range cmds {
		r, ok := byID[c.EnvelopeID]
		if !ok || !r.TimedOut {
			continue
		}
		at := c.Sent
		if len(r.Deliveries) > 0 {
			at = r.Deliveries[0].At
		}
		t.Outcomes[c.EnvelopeID] = append(t.Outcomes[c.EnvelopeID], outcome{Kind: "ack_timeout", Text: "operation_timeout", At: at})
	}
}

// observe tallies what the fake Slack shows of cmds: messages and ack
// timeouts.
func observe(s *slacktest.Server, cmds []sentCommand) tally {
	t := tallyOutcomes(cmds, s.Messages())
	t.addAckTimeouts(cmds, s.Envelopes())
	return t
}

// countKind counts the commands with at least one outcome of kind.
func (t tally) countKind(cmds []sentCommand, kind string) int {
	n := 0
	for _, cmd := range cmds {
		for _, o := range t.Outcomes[cmd.EnvelopeID] {
			if o.Kind == kind {
				n++
				break
			}
		}
	}
	return n
}

// outcomeCounts says how many commands had no outcome, exactly one, or
// more than one.
type outcomeCounts struct {
	Commands, None, One, Many int
}

// counts classifies cmds by their number of outcomes.
func (t tally) counts(cmds []sentCommand) outcomeCounts {
	c := outcomeCounts{Commands: len(cmds)}
	for _, cmd := range cmds {
		switch len(t.Outcomes[cmd.EnvelopeID]) {
		case 0:
			c.None++
		case 1:
			c.One++
		default:
			c.Many++
		}
	}
	return c
}

// countText counts the commands whose first outcome contains substr.
func (t tally) countText(cmds []sentCommand, substr string) int {
	n := 0
	for _, cmd := range cmds {
		if os := t.Outcomes[cmd.EnvelopeID]; len(os) > 0 && strings.Contains(os[0].Text, substr) {
			n++
		}
	}
	return n
}
