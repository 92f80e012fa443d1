package slacktest

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// fakeClock is a settable clock for the rate limiter.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// withClock sets the clock of the rate limiter.
func withClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

func TestChannelRateLimit(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	srv := newTestServer(t, WithChannelRateLimit(1, 3), withClock(clock.Now))
	srv.AddChannel("C0OTHER", "other")
	api := webClient(srv)
	post := func(channel string) error {
		_, _, err := api.PostMessage(channel, slack.MsgOptionText("hi", false))
		return err
	}
	for i := range 3 {
		if err := post(DefaultChannelID); err != nil {
			t.Fatalf("post %d of the burst: %v", i+1, err)
		}
	}
	err := post(DefaultChannelID)
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Fatalf("4th post = %v, want *slack.RateLimitedError with Retry-After 1s", err)
	}
	if calls := srv.Calls(); calls[len(calls)-1].Status != http.StatusTooManyRequests || calls[len(calls)-1].Error != "ratelimited" {
		t.Errorf("last call = %+v, want 429 ratelimited", calls[len(calls)-1])
	}
	if err := post("C0OTHER"); err != nil {
		t.Errorf("another channel has its own limit: %v", err)
	}
	clock.Advance(400 * time.Millisecond)
	if err := post(DefaultChannelID); !errors.As(err, &rl) {
		t.Errorf("post 0.4 s later = %v, want still limited", err)
	}
	clock.Advance(600 * time.Millisecond)
	if err := post(DefaultChannelID); err != nil {
		t.Errorf("post after the refill: %v", err)
	}
	if got := len(srv.MessagesIn(DefaultChannelID)); got != 4 {
		t.Errorf("%d messages in the channel, want the 4 allowed", got)
	}

	srv.SetRateLimitStyle(RateLimitOKFalse)
	if err := post(DefaultChannelID); slackErrCode(err) != "rate_limited" {
		t.Errorf("limited as ok:false = %v, want rate_limited", err)
	}
	if calls := srv.Calls(); calls[len(calls)-1].Status != http.StatusOK {
		t.Errorf("last call = %+v, want HTTP 200", calls[len(calls)-1])
	}

	srv.SetChannelRateLimit(0, 0)
	for range 20 {
		if err := post(DefaultChannelID); err != nil {
			t.Fatalf("with the limit off: %v", err)
		}
	}
}

func TestNoRateLimitByDefault(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	api := webClient(srv)
	for i := range 100 {
		if _, _, err := api.PostMessage(DefaultChannelID, slack.MsgOptionText("flood", false)); err != nil {
			t.Fatalf("post %d: %v", i+1, err)
		}
	}
	if _, err := Start(WithChannelRateLimit(1, 0)); err == nil {
		t.Error("Start accepted a rate limit with no burst")
	}
}

func TestChannelAndThreadRestrictions(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	srv.AddChannel("C0READONLY", "announcements", ChannelReadOnly())
	srv.AddChannel("C0THREADS", "threads-only", ChannelThreadOnly())
	api := webClient(srv)
	_, anchor, err := api.PostMessage(DefaultChannelID, slack.MsgOptionText("anchor", false))
	if err != nil {
		t.Fatal(err)
	}
	_, locked, err := api.PostMessage(DefaultChannelID, slack.MsgOptionText("locked thread", false))
	if err != nil {
		t.Fatal(err)
	}
	_, noReplies, err := api.PostMessage(DefaultChannelID, slack.MsgOptionText("no replies", false))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.LockThread(DefaultChannelID, locked, true); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetNoReplies(DefaultChannelID, noReplies, true); err != nil {
		t.Fatal(err)
	}
	// A thread-only channel needs a parent: one posted before the restriction.
	_, parent, err := api.PostMessage("C0THREADS", slack.MsgOptionText("x", false))
	if slackErrCode(err) != "restricted_action_thread_only_channel" {
		t.Fatalf("top-level post in a thread-only channel: %v", err)
	}
	if err := srv.SetChannelThreadOnly("C0THREADS", false); err != nil {
		t.Fatal(err)
	}
	if _, parent, err = api.PostMessage("C0THREADS", slack.MsgOptionText("parent", false)); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetChannelThreadOnly("C0THREADS", true); err != nil {
		t.Fatal(err)
	}

	text := slack.MsgOptionText("hello", false)
	tests := []struct {
		name    string
		channel string
		opts    []slack.MsgOption
		want    string
	}{
		{"read-only channel", "C0READONLY", nil, "restricted_action_read_only_channel"},
		{"thread-only channel, top level", "C0THREADS", nil, "restricted_action_thread_only_channel"},
		{"thread-only channel, reply", "C0THREADS", []slack.MsgOption{slack.MsgOptionTS(parent)}, ""},
		{"locked thread", DefaultChannelID, []slack.MsgOption{slack.MsgOptionTS(locked)}, "restricted_action_thread_locked"},
		{"message that cannot have replies", DefaultChannelID, []slack.MsgOption{slack.MsgOptionTS(noReplies)}, "cannot_reply_to_message"},
		{"open thread", DefaultChannelID, []slack.MsgOption{slack.MsgOptionTS(anchor)}, ""},
		{"top level in a normal channel", DefaultChannelID, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := api.PostMessage(tt.channel, append([]slack.MsgOption{text}, tt.opts...)...)
			if got := slackErrCode(err); got != tt.want {
				t.Errorf("error = %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("unlock", func(t *testing.T) {
		if err := srv.LockThread(DefaultChannelID, locked, false); err != nil {
			t.Fatal(err)
		}
		if _, _, err := api.PostMessage(DefaultChannelID, text, slack.MsgOptionTS(locked)); err != nil {
			t.Errorf("reply after unlocking: %v", err)
		}
	})
	t.Run("archive at run time", func(t *testing.T) {
		srv.AddChannel("C0LATER", "later")
		if err := srv.SetChannelArchived("C0LATER", true); err != nil {
			t.Fatal(err)
		}
		if _, _, err := api.PostMessage("C0LATER", text); slackErrCode(err) != "is_archived" {
			t.Errorf("post in an archived channel: %v, want is_archived", err)
		}
	})
	t.Run("knobs on unknown targets", func(t *testing.T) {
		if err := srv.SetChannelReadOnly("C0NOPE", true); !errors.Is(err, ErrNoSuchChannel) {
			t.Errorf("SetChannelReadOnly = %v, want ErrNoSuchChannel", err)
		}
		if err := srv.LockThread(DefaultChannelID, "1700000000.000001", true); !errors.Is(err, ErrNoSuchMessage) {
			t.Errorf("LockThread = %v, want ErrNoSuchMessage", err)
		}
	})
}

func TestChatUpdateRules(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	srv.AddChannel("C0ARCHIVE", "to-archive")
	api := webClient(srv)
	_, ts, err := api.PostMessage(DefaultChannelID, slack.MsgOptionText("anchor", false))
	if err != nil {
		t.Fatal(err)
	}
	_, old, err := api.PostMessage(DefaultChannelID, slack.MsgOptionText("old", false))
	if err != nil {
		t.Fatal(err)
	}
	_, archived, err := api.PostMessage("C0ARCHIVE", slack.MsgOptionText("soon archived", false))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.CloseEditWindow(DefaultChannelID, old); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetChannelArchived("C0ARCHIVE", true); err != nil {
		t.Fatal(err)
	}
	update := func(channel, ts, text string) error {
		_, _, _, err := api.UpdateMessage(channel, ts, slack.MsgOptionText(text, false))
		return err
	}
	tests := []struct {
		name, channel, ts, text, want string
	}{
		{"4 000 characters", DefaultChannelID, ts, repeat("é", 4000), ""},
		{"4 001 characters", DefaultChannelID, ts, repeat("é", 4001), "msg_too_long"},
		{"edit window closed", DefaultChannelID, old, "edited", "edit_window_closed"},
		{"archived channel", "C0ARCHIVE", archived, "edited", "is_inactive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := slackErrCode(update(tt.channel, tt.ts, tt.text)); got != tt.want {
				t.Errorf("error = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLongTextIsTruncated(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	api := webClient(srv)
	_, ts, err := api.PostMessage(DefaultChannelID, slack.MsgOptionText(repeat("ü", 40001), false))
	if err != nil {
		t.Fatalf("40 001 characters: %v, want posted (truncated)", err)
	}
	m := srv.MessagesIn(DefaultChannelID)[0]
	if m.TS != ts || !m.Truncated || utf8.RuneCountInString(m.Text) != 40000 {
		t.Errorf("message truncated %v to %d characters, want 40 000", m.Truncated, utf8.RuneCountInString(m.Text))
	}
	resp, err := http.PostForm(srv.APIURL()+"chat.postMessage", url.Values{
		"token": {srv.BotToken()}, "channel": {DefaultChannelID}, "text": {repeat("x", 40001)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := jsonDecode(resp.Body, &body); err != nil || body["ok"] != true || body["warning"] != "message_truncated" {
		t.Errorf("answer %v (%v), want ok with warning message_truncated", body, err)
	}
	if meta, _ := body["response_metadata"].(map[string]any); meta == nil || fmt.Sprint(meta["warnings"]) != "[message_truncated]" {
		t.Errorf("response_metadata = %v, want warnings [message_truncated]", body["response_metadata"])
	}
	if _, _, err := api.PostMessage(DefaultChannelID, slack.MsgOptionText(repeat("x", 40000), false)); err != nil {
		t.Fatal(err)
	}
	if last := srv.Messages()[len(srv.Messages())-1]; last.Truncated {
		t.Error("40 000 characters reported truncated")
	}
}
