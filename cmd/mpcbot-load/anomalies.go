package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
)

// maxExamples bounds the anomalous commands a phase describes.
const maxExamples = 5

// anomalies are the commands a user would complain about: no outcome,
// several, Slack's own error (dispatch_failed, an ack after 3 s), or no
// ack at all. Count is all of them; Examples describes the first few with
// what the fake Slack and the bots' logs know, so the report can show the
// defect rather than just count it.
type anomalies struct {
	Count int
	// AtLinkEnd counts those delivered to a connection that ended within
	// 100 ms (a refresh or a drop racing the delivery).
	AtLinkEnd int
	Examples  []string
}

// findAnomalies looks for anomalous commands and describes up to limit of
// them. handled may be nil (single process).
func findAnomalies(s *slacktest.Server, cmds []sentCommand, t tally, handled map[string][]int, limit int) anomalies {
	var a anomalies
	if len(cmds) == 0 {
		return a
	}
	records := map[string]slacktest.EnvelopeRecord{}
	for _, r := range s.Envelopes() {
		records[r.ID] = r
	}
	conns := map[int]slacktest.ConnectionInfo{}
	for _, c := range s.Connections() {
		conns[c.ID] = c
	}
	start := cmds[0].Sent
	at := func(tm time.Time) string {
		if tm.IsZero() {
			return "-"
		}
		return fmt.Sprintf("+%.3fs", tm.Sub(start).Seconds())
	}
	for _, c := range cmds {
		os := t.Outcomes[c.EnvelopeID]
		r := records[c.EnvelopeID]
		bad := len(os) != 1 || len(r.Acks) == 0
		for _, o := range os {
			if o.Kind == "dispatch_failed" || o.Kind == "ack_timeout" {
				bad = true
			}
		}
		if !bad {
			continue
		}
		a.Count++
		for _, d := range r.Deliveries {
			if end := conns[d.ConnectionID].ClosedAt; !end.IsZero() && !end.Before(d.At) && end.Sub(d.At) <= 100*time.Millisecond {
				a.AtLinkEnd++
				break
			}
		}
		if len(a.Examples) >= limit {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "`%s` (%q, sent %s):", c.EnvelopeID, c.Text, at(c.Sent))
		for _, d := range r.Deliveries {
			ci := conns[d.ConnectionID]
			fmt.Fprintf(&b, " delivered %s to connection %d (retry %d", at(d.At), d.ConnectionID, d.RetryAttempt)
			if d.Lost {
				b.WriteString(", lost")
			}
			if !ci.ClosedAt.IsZero() {
				fmt.Fprintf(&b, "; it ended %s: %s", at(ci.ClosedAt), ci.Outcome)
			}
			b.WriteString(");")
		}
		if r.DispatchFailed {
			b.WriteString(" dispatch_failed;")
		}
		if len(r.Acks) == 0 {
			b.WriteString(" never acked;")
		}
		for _, ack := range r.Acks {
			fmt.Fprintf(&b, " acked %s on connection %d after %s;", at(ack.At), ack.ConnectionID, ack.Latency.Round(time.Microsecond))
		}
		kinds := make([]string, len(os))
		for i, o := range os {
			kinds[i] = o.Kind + " " + at(o.At)
		}
		fmt.Fprintf(&b, " outcomes: [%s]", strings.Join(kinds, ", "))
		if handled != nil {
			fmt.Fprintf(&b, "; served by bot(s) %v", handled[c.EnvelopeID])
		}
		a.Examples = append(a.Examples, b.String())
	}
	return a
}

// anomalyLines renders the anomalies of a phase.
func anomalyLines(p printer, a anomalies) {
	if a.Count == 0 {
		return
	}
	p("")
	p("**%d command(s) a user would complain about** (no outcome, several, Slack's error, or never acked); %d of them were delivered to a connection that ended within 100 ms. The first %d:", a.Count, a.AtLinkEnd, len(a.Examples))
	p("")
	for _, e := range a.Examples {
		p("- %s", e)
	}
}
