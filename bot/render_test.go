package bot

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo"
)

var update = flag.Bool("update", false, "rewrite golden files")

var issued = time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)

func mustParse(t *testing.T, text string) commands.Command {
	t.Helper()
	c, err := commands.Parse(text)
	if err != nil {
		t.Fatalf("Parse(%q): %v", text, err)
	}
	return c
}

func change(t *testing.T, text string) commands.Change {
	t.Helper()
	return mustParse(t, text).(commands.Change)
}

var requester = commands.Requester{UserID: "U0SUPER", UserName: "sam", ChannelID: "C0MPC"}

func okResult(c commands.Change, apiID string) []commands.MemberResult {
	var rs []commands.MemberResult
	for _, m := range c.Members {
		r := commands.MemberResult{Member: m, APIID: apiID}
		for _, a := range c.Actions {
			text := map[plivo.Field]string{
				plivo.FieldMute:      "MPC: test_mpc_1 mute/unmute member(s) succeeded",
				plivo.FieldHold:      "MPC: test_mpc_1 hold/unhold member(s) succeeded",
				plivo.FieldCoachMode: "MPC: test_mpc_1 coach_mode enable/disable succeeded",
			}[a.Field]
			r.Fields = append(r.Fields, commands.FieldResult{Action: a, OK: true, Text: text})
		}
		rs = append(rs, r)
	}
	return rs
}

func failResult(c commands.Change, m plivo.Member, err error) commands.MemberResult {
	r := commands.MemberResult{Member: m, Err: err}
	if pe, ok := plivo.AsError(err); ok {
		r.APIID = pe.APIID
	}
	ex := commands.Explain(err, c.MPC)
	for _, a := range c.Actions {
		r.Fields = append(r.Fields, commands.FieldResult{Action: a, Text: "not applied — " + ex.Summary + ": " + ex.Detail})
	}
	return r
}

func outcome(c commands.Change, results ...commands.MemberResult) commands.Outcome {
	return commands.Outcome{Requester: requester, Change: c, Source: commands.Typed, Results: results,
		Started: issued, Duration: 420 * time.Millisecond}
}

// testService computes follow-ups and prompts with the default rule.
var testService = &commands.Service{ConfirmAllAbove: 5}

// result renders an outcome as the bot does, follow-ups included.
func result(o commands.Outcome) message {
	o.FollowUps = testService.FollowUps(o)
	return renderResult(o, issued)
}

func bptr(b bool) *bool     { return &b }
func sptr(s string) *string { return &s }

// roster builds a roster of live members (cycling roles) and exited entries.
func roster(t *testing.T, live, exited int) commands.Roster {
	mpc, _ := plivo.MPCByName("test_mpc_1")
	ro := commands.Roster{MPC: mpc, Fetched: issued}
	roles := []string{"customer", "agent", "supervisor"}
	for i := range live {
		ro.Live = append(ro.Live, plivo.Participant{MemberID: fmt.Sprint(101 + i), Role: roles[i%3],
			Mute: bptr(i%2 == 1), Hold: bptr(i%4 == 3), CoachMode: bptr(roles[i%3] == "supervisor")})
	}
	for i := range exited {
		ro.Exited = append(ro.Exited, plivo.Participant{MemberID: fmt.Sprint(1000 + i), Role: roles[i%3],
			ExitTime: sptr("2026-11-27 08:00:00+00:00"), ExitCause: sptr("Participant Call Hangup")})
	}
	return ro
}

func TestRenderGolden(t *testing.T) {
	notFound := &plivo.Error{Op: "update participant", Kind: plivo.NotFound, Status: 404, Message: "member 999 not found in MPC test_mpc_1", APIID: "a1b2c3d4-0000-4000-8000-000000000404"}
	unavailable := &plivo.Error{Kind: plivo.Unavailable, Status: 503, Message: "Service Unavailable", Attempts: 4}
	busy := &plivo.Error{Kind: plivo.Busy, RetryAfter: 2300 * time.Millisecond}

	hold := change(t, "hold test_mpc_1 all")
	muteHold := change(t, "mute,hold test_mpc_1 102")
	multi := change(t, "mute test_mpc_1 101,999,103")
	coach := change(t, "coach test_mpc_1 103")
	holdAll := outcome(hold, okResult(hold, "03042285-45d9-11eb-9014-0242ac110003")...)
	holdAll.LiveMembers = 3
	confirmAll := commands.Outcome{Requester: requester, Change: change(t, "mute test_mpc_1 all"), Source: commands.Typed,
		Confirm: &commands.Confirmation{LiveMembers: 8, Threshold: 5}}
	staleRef := commands.Button{Command: hold, Issued: issued}.Stale(issued.Add(3*time.Hour), time.Hour)
	policy, _ := commands.NewPolicy(commands.PolicyConfig{Agents: []string{"U0AGENT"}})
	agentCoach, _ := policy.Authorize(t.Context(), commands.Requester{UserID: "U0AGENT", ChannelID: "C0MPC"}, coach)

	tests := []struct {
		name string
		msg  message
	}{
		{"help", renderHelp()},
		{"usage_error", renderUsageError("`hlod` is not an action; actions are mute, unmute, hold, unhold, coach, uncoach. Did you mean `hold`?")},
		{"refusal_agent_coach", renderRefusal(agentCoach)},
		{"refusal_stale_button", renderRefusal(staleRef)},
		{"anchor_hold_all", renderAnchor(requester, hold, commands.Typed)},
		{"result_hold_all", result(holdAll)},
		{"result_hold_all_unknown_count", result(outcome(hold, okResult(hold, "03042285-45d9-11eb-9014-0242ac110003")...))},
		{"result_mute_hold_member", result(outcome(muteHold, okResult(muteHold, "be5a333a-ee0f-11ea-b02e-0242ac110003")...))},
		{"result_coach", result(outcome(coach, okResult(coach, "c0ac0000-0000-4000-8000-000000000001")...))},
		{"result_not_found", result(outcome(change(t, "mute test_mpc_1 999"), failResult(change(t, "mute test_mpc_1 999"), "999", notFound)))},
		{"result_partial", result(outcome(multi,
			okResult(multi.WithMembers("101"), "11111111-0000-4000-8000-000000000101")[0],
			failResult(multi, "999", notFound),
			okResult(multi.WithMembers("103"), "11111111-0000-4000-8000-000000000103")[0]))},
		{"result_unavailable", result(outcome(hold, failResult(hold, "all", unavailable)))},
		{"result_busy", result(outcome(hold, failResult(hold, "all", busy)))},
		{"confirm_mute_all", renderConfirm(confirmAll, issued, "")},
		{"roster_small", renderRoster(roster(t, 3, 2), rosterView{Prompt: testService.ButtonPrompt, TimedHold: 2 * time.Minute, List: commands.List{MPC: hold.MPC, Page: 1}, ViewerIsSupervisor: true}, issued)},
		{"roster_agent_view", renderRoster(roster(t, 3, 0), rosterView{Prompt: testService.ButtonPrompt, TimedHold: 2 * time.Minute, List: commands.List{MPC: hold.MPC, Page: 1}}, issued)},
		{"roster_with_note", renderRoster(roster(t, 3, 0), rosterView{Prompt: testService.ButtonPrompt, TimedHold: 2 * time.Minute, List: commands.List{MPC: hold.MPC, Page: 1, Here: true},
			Note: append([]string{holdAll.Headline()}, holdAll.ResultLines()...)}, issued)},
		{"roster_big_page1", renderRoster(roster(t, 10, 150), rosterView{Prompt: testService.ButtonPrompt, TimedHold: 2 * time.Minute, List: commands.List{MPC: hold.MPC, Page: 1}, ViewerIsSupervisor: true}, issued)},
		{"roster_big_page6", renderRoster(roster(t, 10, 150), rosterView{Prompt: testService.ButtonPrompt, TimedHold: 2 * time.Minute, List: commands.List{MPC: hold.MPC, Page: 6}}, issued)},
		{"calls", renderCalls(commands.CallList{Fetched: issued, Calls: []commands.LiveCall{
			{Name: "test_mpc_1", UUID: "4a0ab137-0000-4000-8000-000000000001", Status: "active", Since: issued.Add(-12 * time.Minute)},
			{Name: "mpc 1000", UUID: "a5dc37a2-0000-4000-8000-000000000002", Status: "active", Since: issued.Add(-30 * time.Second)},
			{Name: "onboarding-queue", UUID: "c1d57d22-0000-4000-8000-000000000003", Status: "initialized"},
		}}, commands.Calls{}, placedEphemeral, issued)},
		{"calls_empty", renderCalls(commands.CallList{Fetched: issued}, commands.Calls{Here: true}, placedByBot, issued)},
		{"roster_empty", renderRoster(roster(t, 0, 0), rosterView{Prompt: testService.ButtonPrompt, TimedHold: 2 * time.Minute, List: commands.List{MPC: hold.MPC, Page: 1}}, issued)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf strings.Builder
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(map[string]any{"text": tt.msg.Text, "blocks": tt.msg.Blocks}); err != nil {
				t.Fatal(err)
			}
			got := buf.String()
			if err := slacktest.ValidateBlocks(mustJSON(t, tt.msg.Blocks)); err != nil {
				t.Fatalf("blocks break Block Kit's rules: %v", err)
			}
			golden(t, tt.name+".json", got)
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./bot -update to create it): %v", err)
	}
	if got != string(want) {
		t.Fatalf("%s differs from the golden file (go test ./bot -run TestRenderGolden -update accepts it):\n%s", name, got)
	}
}

// Every page of the largest possible roster (10 live, 150 exited entries)
// stays within Block Kit's limits, and together the pages show every entry
// exactly once: paged, never truncated.
func TestRosterPagingCoversEverything(t *testing.T) {
	for _, size := range []struct{ live, exited int }{{10, 150}, {10, 0}, {0, 26}, {12, 3}, {1, 1}} {
		ro := roster(t, size.live, size.exited)
		pages := rosterPages(size.live, size.exited)
		seen := map[string]int{}
		for page := 1; page <= pages; page++ {
			m := renderRoster(ro, rosterView{Prompt: testService.ButtonPrompt, TimedHold: 2 * time.Minute, List: commands.List{MPC: ro.MPC, Page: page}, ViewerIsSupervisor: true}, issued)
			if len(m.Blocks) > maxBlocks {
				t.Fatalf("%+v page %d: %d blocks", size, page, len(m.Blocks))
			}
			raw := mustJSON(t, m.Blocks)
			if err := slacktest.ValidateBlocks(raw); err != nil {
				t.Fatalf("%+v page %d: %v", size, page, err)
			}
			for _, id := range regexp.MustCompile(`\b(1\d{2}|1\d{3})\b`).FindAllString(blockText(raw), -1) {
				seen[id]++
			}
			if page < pages && !strings.Contains(string(raw), "Next ▶") {
				t.Fatalf("%+v page %d of %d has no Next button", size, page, pages)
			}
		}
		for _, p := range append(append([]plivo.Participant{}, ro.Live...), ro.Exited...) {
			if seen[p.MemberID] == 0 {
				t.Fatalf("%+v: member %s is on no page", size, p.MemberID)
			}
		}
		// A page beyond the last shows the last page rather than nothing.
		m := renderRoster(ro, rosterView{Prompt: testService.ButtonPrompt, TimedHold: 2 * time.Minute, List: commands.List{MPC: ro.MPC, Page: pages + 5}}, issued)
		if len(m.Blocks) < 3 {
			t.Fatalf("%+v: page past the end rendered %d blocks", size, len(m.Blocks))
		}
	}
}

// blockText returns the text shown in sections (not button values).
func blockText(raw []byte) string {
	var blocks []struct {
		Type string `json:"type"`
		Text *struct {
			Text string `json:"text"`
		} `json:"text"`
	}
	_ = json.Unmarshal(raw, &blocks)
	var b strings.Builder
	for _, bl := range blocks {
		if bl.Type == "section" && bl.Text != nil {
			b.WriteString(bl.Text.Text)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// User text echoed in any message is inert: an MPC named like a Slack
// mention pings nobody, and & < > arrive entity-encoded.
func TestRenderEscapesUserText(t *testing.T) {
	for _, name := range []string{"x<!channel>", "a&b<@U024BE7LH>", "<!here|here>z", "q>r", strings.Repeat("&<", plivo.MaxNameLength/2)} {
		mpc, err := plivo.MPCByName(name)
		if err != nil {
			t.Fatalf("MPCByName(%q): %v", name, err)
		}
		c := commands.Change{Actions: []commands.Action{commands.Hold}, MPC: mpc, Members: []plivo.Member{plivo.AllMembers}}
		o := outcome(c, okResult(c, "api")...)
		ro := commands.Roster{MPC: mpc, Fetched: issued}
		for _, m := range []message{
			renderAnchor(requester, c, commands.Typed), result(o),
			renderConfirm(commands.Outcome{Requester: requester, Change: c, Confirm: &commands.Confirmation{LiveMembers: 9, Threshold: 5}}, issued, ""),
			renderRoster(ro, rosterView{Prompt: testService.ButtonPrompt, TimedHold: 2 * time.Minute, List: commands.List{MPC: mpc, Page: 1}}, issued),
			renderUsageError("bad " + name), renderNotice(name),
		} {
			if err := slacktest.ValidateBlocks(mustJSON(t, m.Blocks)); err != nil {
				t.Errorf("MPC %q: %v", name, err)
			}
			shown := m.Text + "\n" + blockTextAll(t, m)
			for _, mention := range regexp.MustCompile(`<[!@#][^>]*>`).FindAllString(shown, -1) {
				if mention != "<@"+requester.UserID+">" {
					t.Errorf("MPC %q: message contains live markup %q:\n%s", name, mention, shown)
				}
			}
			if strings.Contains(shown, "&b") && !strings.Contains(shown, "&amp;b") {
				t.Errorf("MPC %q: & not escaped:\n%s", name, shown)
			}
		}
	}
}

// blockTextAll returns every mrkdwn text shown by a message's blocks
// (section, context, confirm dialogs). plain_text objects (headers, button
// labels) are shown literally by Slack and never parse markup.
func blockTextAll(t *testing.T, m message) string {
	t.Helper()
	var blocks []any
	if err := json.Unmarshal(mustJSON(t, m.Blocks), &blocks); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["type"] == "mrkdwn" {
				if s, ok := x["text"].(string); ok {
					b.WriteString(s)
					b.WriteByte('\n')
				}
				return
			}
			for k, vv := range x {
				if k != "value" && k != "action_id" && k != "block_id" {
					walk(vv)
				}
			}
		case []any:
			for _, vv := range x {
				walk(vv)
			}
		}
	}
	walk(blocks)
	return b.String()
}

// Every button a message offers decodes as a valid command, so a click
// always reaches the same validation as typed text.
func TestButtonsDecode(t *testing.T) {
	hold := change(t, "hold,mute test_mpc_1 all")
	o := outcome(hold, okResult(hold, "api")...)
	msgs := []message{
		result(o),
		renderConfirm(commands.Outcome{Requester: requester, Change: hold, Confirm: &commands.Confirmation{LiveMembers: 9, Threshold: 5}}, issued, "1700000000.000100"),
		renderRoster(roster(t, 10, 40), rosterView{Prompt: testService.ButtonPrompt, TimedHold: 2 * time.Minute, List: commands.List{MPC: hold.MPC, Page: 1}, ViewerIsSupervisor: true}, issued),
	}
	for _, m := range msgs {
		var blocks []map[string]any
		_ = json.Unmarshal(mustJSON(t, m.Blocks), &blocks)
		n := 0
		for _, bl := range blocks {
			els, _ := bl["elements"].([]any)
			for _, e := range els {
				el := e.(map[string]any)
				if el["type"] != "button" {
					continue
				}
				n++
				id, _ := el["action_id"].(string)
				value, _ := el["value"].(string)
				prefix, _, _ := strings.Cut(id, ":")
				if prefix == actionCancel {
					continue
				}
				b, err := commands.DecodeButton(value)
				if err != nil {
					t.Fatalf("button %q value %q: %v", id, value, err)
				}
				if c, ok := b.Command.(commands.Change); ok && prefix == actionPanel {
					if _, ok := panelView(id, c); !ok {
						t.Fatalf("panel button %q does not carry its view", id)
					}
				}
				if c, ok := b.Command.(commands.Change); ok && c.All() && !c.Confirmed && el["confirm"] == nil {
					t.Fatalf("button %q changes all members without confirmation", id)
				}
			}
		}
		if n == 0 {
			t.Fatalf("message has no buttons: %s", m.Text)
		}
	}
}

func TestNoThreadNote(t *testing.T) {
	for _, tt := range []struct {
		code     string
		inThread bool
		prefix   string
	}{
		{"not_in_channel", false, "No thread"},
		{"channel_not_found", false, "No thread"},
		{"is_archived", false, "No thread"},
		{"restricted_action_read_only_channel", false, "No thread"},
		{"restricted_action_thread_only_channel", false, "No thread"},
		{"restricted_action_thread_locked", true, "I couldn't reply in the thread"},
		{"cannot_reply_to_message", true, "I couldn't reply in the thread"},
	} {
		err := fmt.Errorf("post: %w", errSlack(tt.code))
		if !cannotPost(err) {
			t.Errorf("%s: cannotPost = false", tt.code)
		}
		if note := noThreadNote(err, tt.inThread); !strings.Contains(note, tt.code) || !strings.HasPrefix(note, tt.prefix) {
			t.Errorf("%s: note %q", tt.code, note)
		}
	}
	if cannotPost(errors.New("boom")) {
		t.Error("a network error counted as a channel refusal")
	}
}

func errSlack(code string) error { return slack.SlackErrorResponse{Err: code} }

// Values from Plivo or users reach the notification text escaped and the
// blocks only as plain_text: "<!channel>" pings nobody and `*_~` or
// backticks cannot break mpcbot's formatting.
func TestHostileValuesAreInert(t *testing.T) {
	mpc, err := plivo.MPCByName("x*y_z~`q")
	if err != nil {
		t.Fatal(err)
	}
	hostile := "<!channel> *bold* `code` _it_ ~s~"
	ro := commands.Roster{MPC: mpc, Fetched: issued, Live: []plivo.Participant{
		{MemberID: "101", Role: hostile, Mute: bptr(false), Hold: bptr(false), CoachMode: bptr(false)},
	}, Exited: []plivo.Participant{{MemberID: "102", Role: hostile, ExitTime: sptr("<!here>"), ExitCause: sptr(hostile)}}}
	c := commands.Change{Actions: []commands.Action{commands.Hold}, MPC: mpc, Members: []plivo.Member{"101"}}
	o := outcome(c, commands.MemberResult{Member: "101", APIID: "<!everyone>", Fields: []commands.FieldResult{
		{Action: commands.Hold, OK: true, Text: hostile}}})
	for name, m := range map[string]message{
		"roster": renderRoster(ro, rosterView{List: commands.List{MPC: mpc, Page: 1}}, issued),
		"result": result(o),
		"anchor": renderAnchor(requester, c, commands.Typed),
	} {
		if strings.Contains(m.Text, "<!") {
			t.Errorf("%s: notification text carries a raw special mention: %q", name, m.Text)
		}
		var blocks []map[string]any
		_ = json.Unmarshal(mustJSON(t, m.Blocks), &blocks)
		walkText(blocks, func(typ, text string) {
			if typ == "mrkdwn" && (strings.Contains(text, "<!") || strings.Contains(text, "*bold*") || strings.Contains(text, "`code`")) {
				t.Errorf("%s: user or Plivo data in mrkdwn: %q", name, text)
			}
		})
	}
}

// walkText calls f for every text object in decoded blocks.
func walkText(v any, f func(typ, text string)) {
	switch x := v.(type) {
	case map[string]any:
		if typ, ok := x["type"].(string); ok {
			if text, ok := x["text"].(string); ok {
				f(typ, text)
			}
		}
		for _, child := range x {
			walkText(child, f)
		}
	case []map[string]any:
		for _, child := range x {
			walkText(child, f)
		}
	case []any:
		for _, child := range x {
			walkText(child, f)
		}
	}
}

func TestSlackResponseURL(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want bool
	}{
		{"https://hooks.slack.com/commands/T1/2/x", true},
		{"https://hooks.slack-gov.com/actions/T1/2/x", true},
		{"https://example.slack.com/x", true},
		{"http://hooks.slack.com/commands/T1/2/x", false},
		{"https://hooks.slack.com:8443/x", false},
		{"https://hooks.slack.com.evil.example/x", false},
		{"https://evilslack.com/x", false},
		{"https://user:pw@hooks.slack.com/x", false},
		{"https://127.0.0.1/response/1", false},
		{"not a url", false},
	} {
		if got := SlackResponseURL(tt.url); got != tt.want {
			t.Errorf("SlackResponseURL(%q) = %v, want %v", tt.url, got, tt.want)
		}
	}
}
