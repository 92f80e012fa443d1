package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot"
	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// `printf '/mpc hold test_mpc_1 all\n' | mpcbot demo` prints the reply and
// exits at the end of input; the demo runs the real pipeline against the
// embedded simulator, so state carries from one line to the next.
func TestDemoPipedInput(t *testing.T) {
	t.Parallel()
	input := strings.Join([]string{
		"/mpc hold test_mpc_1 all",
		"/mpc list test_mpc_1",
		"# a comment, then a blank line",
		"",
		"mute,hold test_mpc_1 102",
		"/mpc coach test_mpc_1 all",
		"/mpc hlod test_mpc_1 all",
		"/mpc mute nosuchcall 101",
		"/mpc help",
	}, "\n") + "\n"
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, []string{"demo"}, map[string]string{}, strings.NewReader(input), &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("demo exited %d; stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"> /mpc hold test_mpc_1 all\n✅ hold all participants in test_mpc_1",
		"✅ hold: MPC: test_mpc_1 hold/unhold member(s) succeeded",
		"api_id: ",
		"Unhold all: /mpc unhold test_mpc_1 all",
		"Participants of test_mpc_1: 3 live, 0 exited",
		"unmuted · on hold", // the hold above shows in the roster
		"✅ mute + hold member 102 in test_mpc_1",
		"coach_mode can be updated only for a specific member_id",
		"Did you mean `hold`?",
		"❌ mute member 101 in nosuchcall: failed",
		"not found",
		"controls live Plivo multiparty calls",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "> /mpc") != 7 {
		t.Errorf("demo echoed %d commands, want 7 (comments and blank lines skipped):\n%s", strings.Count(out, "> /mpc"), out)
	}
}

func TestDemoStopsOnSignal(t *testing.T) {
	t.Parallel()
	r, w := ioPipe(t)
	defer w.Close()
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"demo"}, map[string]string{}, r, &stdout, &stderr) }()
	if _, err := w.Write([]byte("/mpc list test_mpc_1\n")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("demo output:\n%s", stdout.String())
		}
	})
	waitUntil(t, waitFor, "the demo's reply to /mpc list", func() bool {
		return strings.Contains(stdout.String(), "Participants of test_mpc_1")
	})
	cancel() // SIGINT/SIGTERM
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d after a signal", code)
		}
	case <-time.After(waitFor):
		t.Fatal("the demo did not stop on a signal")
	}
}

func TestSubcommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args       []string
		wantCode   int
		wantOut    string
		wantStderr string
	}{
		{[]string{"help"}, exitOK, "mpcbot demo", ""},
		{[]string{"--help"}, exitOK, "mpcbot exec <command>", ""},
		{[]string{"manifest"}, exitOK, "socket_mode_enabled: true", ""},
		{[]string{"frobnicate"}, exitUsage, "", `unknown subcommand "frobnicate"`},
		{[]string{"run", "extra"}, exitUsage, "", "takes no arguments"},
		{[]string{"exec"}, exitUsage, "", "give a /mpc command"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			var stdout, stderr syncBuffer
			code := run(context.Background(), tt.args, map[string]string{}, strings.NewReader(""), &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stdout.String(), tt.wantOut) || !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
			}
		})
	}
	var stdout syncBuffer
	run(context.Background(), []string{"manifest"}, nil, strings.NewReader(""), &stdout, &syncBuffer{})
	if stdout.String() != string(mpcbot.Manifest) {
		t.Fatal("mpcbot manifest does not print manifest.yaml verbatim")
	}
}

// Every configuration error names the variable and the fix, all at once,
// and exits 2 without connecting anywhere.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	valid := map[string]string{
		"SLACK_APP_TOKEN": "xapp-1-A-1-abc", "SLACK_BOT_TOKEN": "xoxb-1-abc",
		"PLIVO_AUTH_ID": "MA0000000000000000000", "PLIVO_AUTH_TOKEN": "plivo-token-abc",
	}
	tests := []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"nothing set", map[string]string{"SLACK_APP_TOKEN": "", "SLACK_BOT_TOKEN": "", "PLIVO_AUTH_ID": "", "PLIVO_AUTH_TOKEN": ""},
			[]string{"SLACK_APP_TOKEN is not set", "App-Level Tokens", "SLACK_BOT_TOKEN is not set", "PLIVO_AUTH_ID is not set", "PLIVO_AUTH_TOKEN is not set"}},
		{"swapped tokens", map[string]string{"SLACK_APP_TOKEN": "xoxb-1", "SLACK_BOT_TOKEN": "xapp-1"},
			[]string{"SLACK_APP_TOKEN does not start with xapp-", "SLACK_BOT_TOKEN does not start with xoxb-"}},
		{"bad numbers", map[string]string{"PLIVO_RATE": "fast", "PLIVO_BURST": "-1"},
			[]string{"PLIVO_RATE has an invalid value: set it to requests per second"}},
		{"bad burst", map[string]string{"PLIVO_BURST": "0"}, []string{"PLIVO_BURST must be ≥ 1"}},
		{"bad duration", map[string]string{"PLIVO_TIMEOUT": "ten seconds"}, []string{"PLIVO_TIMEOUT has an invalid value: set it to a duration like 10s"}},
		{"bad urls", map[string]string{"SLACK_API_URL": "slack.com/api", "PLIVO_API_URL": "ftp://x"},
			[]string{"SLACK_API_URL is not an http(s) URL", "PLIVO_API_URL is not an http(s) URL"}},
		{"names instead of ids", map[string]string{"MPC_SUPERVISORS": "@alice"}, []string{"MPC_SUPERVISORS", "not a Slack user id"}},
		{"channel names", map[string]string{"MPC_CHANNELS": "#ops"}, []string{"MPC_CHANNELS", "channel id"}},
		{"negative threshold", map[string]string{"MPC_CONFIRM_ALL_ABOVE": "-1"}, []string{"MPC_CONFIRM_ALL_ABOVE is negative"}},
		{"log settings", map[string]string{"LOG_LEVEL": "loud", "LOG_FORMAT": "xml"}, []string{"LOG_LEVEL is \"loud\"", "LOG_FORMAT is \"xml\""}},
		{"busy port", map[string]string{"HTTP_ADDR": "256.0.0.1:99999"}, []string{"HTTP_ADDR"}},
		{"too many connections", map[string]string{"SLACK_CONNECTIONS": "11"},
			[]string{"SLACK_CONNECTIONS is 11", "10 Socket Mode connections per app in total"}},
		{"no connection", map[string]string{"SLACK_CONNECTIONS": "0"}, []string{"SLACK_CONNECTIONS is 0"}},
		{"timed maximum", map[string]string{"MPC_TIMED_MAX": "500ms"}, []string{"MPC_TIMED_MAX is shorter than 1s"}},
		{"timed default below 1s", map[string]string{"MPC_TIMED_DEFAULT": "500ms"}, []string{"MPC_TIMED_DEFAULT is 500ms"}},
		{"timed default above the maximum", map[string]string{"MPC_TIMED_MAX": "1m", "MPC_TIMED_DEFAULT": "2m"},
			[]string{"MPC_TIMED_DEFAULT is 2m0s", "from 1s to MPC_TIMED_MAX"}},
		{"group staleness", map[string]string{"MPC_GROUP_MAX_STALE": "0s"}, []string{"MPC_GROUP_MAX_STALE must be > 0"}},
		{"redis scheme", map[string]string{"REDIS_URL": "http://user:hunter2secret@redis:6379/0"},
			[]string{"REDIS_URL", "redis://"}},
		{"redis url", map[string]string{"REDIS_URL": "redis://user:hunter2secret@[::1"}, []string{"REDIS_URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			for k, v := range valid {
				env[k] = v
			}
			for k, v := range tt.set {
				env[k] = v
			}
			var stdout, stderr syncBuffer
			code := run(context.Background(), []string{"run"}, env, strings.NewReader(""), &stdout, &stderr)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitUsage, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if strings.Contains(stderr.String(), "hunter2secret") {
				t.Errorf("a password in REDIS_URL was printed:\n%s", stderr.String())
			}
		})
	}
}

// Empty access lists mean nobody may do anything; the bot says so at
// start, and refuses.
func TestEmptyAccessListsWarn(t *testing.T) {
	t.Parallel()
	h := startBot(t, withEnv("MPC_SUPERVISORS", "", "MPC_AGENTS", ""))
	if !strings.Contains(h.logs.String(), "every request will be refused") {
		t.Fatalf("no warning at start:\n%s", h.logs.String())
	}
	id, _ := h.slash(supervisorID, channelID, "list test_mpc_1")
	if m := h.responseFor(id); !strings.Contains(m.Text, "not allowed") {
		t.Fatalf("reply %q", m.Text)
	}
}

// `mpcbot run` with a real environment serves a command end to end (the
// wiring main uses, not only NewMain).
func TestRunServes(t *testing.T) {
	t.Parallel()
	sl := slacktest.NewServer(slacktest.WithPingInterval(500 * time.Millisecond))
	t.Cleanup(sl.Close)
	sim := plivotest.NewServer(plivotest.WithSampleMPC())
	t.Cleanup(sim.Close)
	env := map[string]string{
		"SLACK_APP_TOKEN": sl.AppToken(), "SLACK_BOT_TOKEN": sl.BotToken(), "SLACK_API_URL": sl.APIURL(),
		"PLIVO_AUTH_ID": sim.AuthID, "PLIVO_AUTH_TOKEN": sim.AuthToken, "PLIVO_API_URL": sim.URL,
		"MPC_SUPERVISORS": supervisorID, "HTTP_ADDR": "", "LOG_FORMAT": "text",
	}
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, nil, env, strings.NewReader(""), &stdout, &stderr) }()
	wctx, wcancel := context.WithTimeout(context.Background(), waitFor)
	defer wcancel()
	if err := sl.WaitConnections(wctx, 1); err != nil {
		t.Fatalf("no connection: %v\n%s", err, stderr.String())
	}
	id := sl.SendSlashCommand(slacktest.SlashCommand{UserID: supervisorID, ChannelID: channelID, Text: "mute test_mpc_1 101"})
	if _, err := sl.WaitAck(wctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := sl.WaitForMessage(wctx, func(m slacktest.Message) bool { return strings.Contains(m.Text, "✅ mute: MPC: test_mpc_1") }); err != nil {
		t.Fatalf("no result: %v\n%s", err, stderr.String())
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	if !strings.Contains(stderr.String(), "level=INFO msg=audit") {
		t.Fatalf("LOG_FORMAT=text not honoured:\n%s", stderr.String())
	}
}

func ioPipe(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, w
}
