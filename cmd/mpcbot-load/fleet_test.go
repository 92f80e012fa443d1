package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/commands"
)

func TestSlackErrorsAreOutcomes(t *testing.T) {
	t.Parallel()
	cmds := []sentCommand{
		{EnvelopeID: "e1", UserID: "U0L1"},
		{EnvelopeID: "e2", UserID: "U0L2"},
		{EnvelopeID: "e3", UserID: "U0L3"},
	}
	msgs := []slacktest.Message{
		{Method: "dispatch_failed", EnvelopeID: "e1", User: "U0L1", Text: `/mpc failed with the error "dispatch_failed"`},
		{Method: "chat.postMessage", Channel: "C0MPC", TS: "1.000002", Text: "<@U0L2> asked: mute member 101 in test_mpc_1"},
		{Method: "chat.postMessage", Channel: "C0MPC", TS: "1.000003", ThreadTS: "1.000002", Text: "✅ mute: succeeded"},
	}
	records := []slacktest.EnvelopeRecord{
		{ID: "e1", DispatchFailed: true},
		{ID: "e2", TimedOut: true, Deliveries: []slacktest.Delivery{{At: time.Unix(10, 0)}}},
		{ID: "e3", TimedOut: true},
	}
	tl := tallyOutcomes(cmds, msgs)
	tl.addAckTimeouts(cmds, records)
	want := map[string][]string{
		"e1": {"dispatch_failed"},
		"e2": {"thread", "ack_timeout"}, // answered, but Slack showed an error first: two outcomes
		"e3": {"ack_timeout"},           // never answered at all
	}
	for id, kinds := range want {
		var got []string
		for _, o := range tl.Outcomes[id] {
			got = append(got, o.Kind)
		}
		if strings.Join(got, ",") != strings.Join(kinds, ",") {
			t.Errorf("%s: outcomes %v, want %v", id, got, kinds)
		}
	}
	if got := tl.countKind(cmds, "ack_timeout"); got != 2 {
		t.Errorf("countKind(ack_timeout) = %d, want 2", got)
	}
	if got, want := tl.counts(cmds), (outcomeCounts{Commands: 3, One: 2, Many: 1}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
}

// TestAnomaliesOfALostCommand sends a command while no bot is connected:
// the fake Slack answers dispatch_failed, which must be found and described.
func TestAnomaliesOfALostCommand(t *testing.T) {
	t.Parallel()
	s := slacktest.NewServer()
	defer s.Close()
	id := s.SendSlashCommand(slacktest.SlashCommand{UserID: "U0L1", Text: "mute test_mpc_1 101"})
	cmds := []sentCommand{{EnvelopeID: id, UserID: "U0L1", Text: "mute test_mpc_1 101", Sent: time.Now()}}
	tl := observe(s, cmds)
	if got := tl.countKind(cmds, "dispatch_failed"); got != 1 {
		t.Fatalf("dispatch_failed outcomes: %d, want 1 (%+v)", got, tl.Outcomes)
	}
	a := findAnomalies(s, cmds, tl, map[string][]int{}, maxExamples)
	if a.Count != 1 || len(a.Examples) != 1 {
		t.Fatalf("anomalies %+v, want one", a)
	}
	for _, want := range []string{id, "dispatch_failed;", "never acked", "served by bot(s) []"} {
		if !strings.Contains(a.Examples[0], want) {
			t.Errorf("example %q does not say %q", a.Examples[0], want)
		}
	}
	if none := findAnomalies(s, nil, tl, nil, maxExamples); none.Count != 0 {
		t.Errorf("anomalies of no commands: %+v", none)
	}
}

func TestTapTally(t *testing.T) {
	t.Parallel()
	sent := time.Unix(100, 0)
	later := sent.Add(time.Second)
	pairs := []tapPair{
		{thread: "1.000001", first: "a1", second: "a2", sent: sent}, // clean
		{thread: "1.000002", first: "b1", second: "b2", sent: sent}, // both ran
		{thread: "1.000003", first: "c1", second: "c2", sent: sent}, // second tap unanswered
		{thread: "1.000004", first: "d1", second: "d2", sent: sent}, // answered, but not as a double tap
	}
	reply := func(thread string, at time.Time) slacktest.Message {
		return slacktest.Message{Method: "chat.postMessage", ThreadTS: thread, Time: at, Text: "✅ unmute"}
	}
	msgs := []slacktest.Message{
		reply("1.000001", sent.Add(-time.Minute)), // the original result, before the taps
		reply("1.000001", later),
		{Method: "response_url", EnvelopeID: "a2", Text: commands.DuplicateText},
		reply("1.000002", later),
		reply("1.000002", later),
		reply("1.000003", later),
		reply("1.000004", later),
		{Method: "response_url", EnvelopeID: "d1", Text: "busy, try again"},
	}
	seen := seenTaps(pairs, msgs)
	var res tapResult
	res.tally(seen)
	if res.Clean != 1 || res.BothRan != 1 || res.Incomplete != 2 {
		t.Errorf("clean %d, both ran %d, incomplete %d; want 1, 1, 2 (%+v)", res.Clean, res.BothRan, res.Incomplete, seen)
	}
	if seen[2].complete() || !seen[0].complete() {
		t.Errorf("complete: %+v", seen)
	}
	res.pairs = pairs
	res.countCrossReplica(map[string][]int{"a1": {1}, "a2": {2}, "b1": {3}, "b2": {3}, "c1": {1}, "d1": {1, 2}, "d2": {2}})
	if res.CrossReplica != 1 {
		t.Errorf("cross-replica pairs %d, want 1", res.CrossReplica)
	}
}

func TestDoubleTapsNeedAResult(t *testing.T) {
	t.Parallel()
	s := slacktest.NewServer()
	defer s.Close()
	res := sendDoubleTaps(context.Background(), s, []sentCommand{{EnvelopeID: "e1", UserID: "U0L1"}}, 3)
	if res.Skipped == "" || res.Pairs != 0 {
		t.Errorf("taps with no result to tap: %+v", res)
	}
}

func TestMetricValue(t *testing.T) {
	t.Parallel()
	body := "# HELP mpcbot_redis_healthy x\nmpcbot_redis_healthy 0\nmpcbot_fleet_replicas 3\nmpcbot_fleet_replicas_total{x=\"1\"} 9\n"
	tests := []struct {
		name string
		want float64
		ok   bool
	}{
		{"mpcbot_redis_healthy", 0, true},
		{"mpcbot_fleet_replicas", 3, true},
		{"mpcbot_missing", 0, false},
	}
	for _, tt := range tests {
		got, ok := metricValue(body, tt.name)
		if got != tt.want || ok != tt.ok {
			t.Errorf("metricValue(%s) = %g, %v; want %g, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseFlagsFleet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"defaults", nil, ""},
		{"quick", []string{"-quick"}, ""},
		{"too many connections", []string{"-replicas", "6"}, "over Slack's 10"},
		{"fewer connections per bot", []string{"-replicas", "5", "-env", "SLACK_CONNECTIONS=1"}, ""},
		{"no replicas", []string{"-replicas", "0"}, "-replicas must be ≥ 1"},
		{"outage past the flood", []string{"-outage-after", "25s", "-outage", "10s"}, "must end before the flood"},
		{"pprof with a given binary", []string{"-pprof", "/tmp/x", "-bin", "/bin/true"}, "drop -bin"},
		{"bad CPU list", []string{"-bot-cpus", "x"}, "-bot-cpus"},
		{"unknown phase", []string{"-phases", "ack,storm"}, "unknown phase"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("parseFlags(%q): %v", tt.args, err)
				}
				if o.replicas < 1 || len(o.phases) != len(allPhases) {
					t.Errorf("options %+v", o)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseFlags(%q) = %v, want an error with %q", tt.args, err, tt.wantErr)
			}
		})
	}
}
