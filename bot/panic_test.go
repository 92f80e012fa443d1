package bot

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo"
)

// panicky is a Plivo whose calls panic: a stand-in for a bug anywhere below
// the bot.
type panicky struct{}

func (panicky) UpdateParticipant(context.Context, plivo.MPC, plivo.Member, plivo.ParticipantUpdate) (plivo.UpdateResult, error) {
	panic("bug in an update")
}

func (panicky) ListParticipants(context.Context, plivo.MPC) ([]plivo.Participant, error) {
	panic("bug in a list")
}

func (panicky) LiveMPCs(context.Context) (plivo.LiveMPCList, error) { panic("bug in the calls") }

// A panic in one command's worker (or below it) is recovered, logged with
// the envelope id, answered to the user as an internal error, and the
// process keeps serving.
func TestPanicIsRecoveredAndAnswered(t *testing.T) {
	t.Parallel()
	srv := slacktest.NewServer(slacktest.WithPingInterval(500 * time.Millisecond))
	t.Cleanup(srv.Close)
	policy, err := commands.NewPolicy(commands.PolicyConfig{Supervisors: []string{slacktest.DefaultUserID}})
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	b, err := New(Config{AppToken: srv.AppToken(), BotToken: srv.BotToken(), APIURL: srv.APIURL(),
		Service:            &commands.Service{Plivo: panicky{}, Policy: policy, Timeout: 2 * time.Second},
		ResponseURLAllowed: func(string) bool { return true }, Connections: 1,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	wait, stop := context.WithTimeout(context.Background(), 15*time.Second)
	defer stop()
	if err := srv.WaitConnections(wait, 1); err != nil {
		t.Fatal(err)
	}
	// The list panics in the worker itself; the update panics in the
	// goroutine of its Plivo call.
	for _, text := range []string{"list test_mpc_1", "mute test_mpc_1 101", "list test_mpc_1"} {
		id := srv.SendSlashCommand(slacktest.SlashCommand{Text: text})
		m, err := srv.WaitForMessage(wait, func(m slacktest.Message) bool {
			return m.EnvelopeID == id && m.Method == "response_url" || strings.Contains(m.Text, "internal error") && m.ThreadTS != ""
		})
		if err != nil {
			t.Fatalf("%q: no answer after a panic: %v\n%s", text, err, logs.String())
		}
		if !strings.Contains(m.Text, "internal error") {
			t.Fatalf("%q: answer %q, want an internal error", text, m.Text)
		}
	}
	if !strings.Contains(logs.String(), "panic while handling a request") || !strings.Contains(logs.String(), "panic while calling Plivo") {
		t.Fatalf("panics not logged:\n%s", logs.String())
	}
}

// lockedBuffer is a concurrency-safe log sink.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
