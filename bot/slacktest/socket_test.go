package slacktest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

func TestConnectSendsHelloFirst(t *testing.T) {
	tests := []struct {
		name       string
		debug      bool // slack.OptionDebug appends debug_reconnects=true to the URL
		wantApprox int
	}{
		{name: "plain", wantApprox: 18060},
		{name: "debug_reconnects", debug: true, wantApprox: 360},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			bot := startBot(t, webClient(srv, slack.OptionDebug(tt.debug)))
			hello := bot.next(t, socketmode.EventTypeHello)
			req := hello.Request
			if req.NumConnections != 1 || req.ConnectionInfo.AppID != srv.AppID() || req.DebugInfo.Host == "" {
				t.Errorf("hello = %+v, want num_connections 1, app %s and a host", req, srv.AppID())
			}
			if req.DebugInfo.ApproximateConnectionTime != tt.wantApprox {
				t.Errorf("approximate_connection_time = %d, want %d", req.DebugInfo.ApproximateConnectionTime, tt.wantApprox)
			}
			st := srv.Stats()
			if st.OpenCalls != 1 || st.ConnectionsOpened != 1 || st.Hellos != 1 || st.LiveConnections != 1 {
				t.Errorf("stats = %+v, want one open, one connection, one hello, one live", st)
			}
		})
	}
}

func TestConnectionsOpenAuth(t *testing.T) {
	srv := newTestServer(t)
	tests := []struct {
		name     string
		appToken string
		want     string
	}{
		{name: "app token", appToken: srv.AppToken(), want: ""},
		{name: "bot token", appToken: srv.BotToken(), want: "invalid_auth"},
		{name: "wrong app token", appToken: "xapp-1-other", want: "invalid_auth"},
		{name: "missing", appToken: "", want: "not_authed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := slack.New(srv.BotToken(), slack.OptionAppLevelToken(tt.appToken), slack.OptionAPIURL(srv.APIURL()))
			_, wsURL, err := api.StartSocketModeContext(waitCtx(t))
			if got := slackErrCode(err); got != tt.want {
				t.Fatalf("error = %q, want %q", got, tt.want)
			}
			if tt.want == "" && !strings.HasPrefix(wsURL, "ws://127.0.0.1:") {
				t.Errorf("url = %q, want ws://127.0.0.1:…", wsURL)
			}
			if tt.want == "" && !strings.Contains(wsURL, "/link/?ticket=") || tt.want == "" && !strings.Contains(wsURL, "app_id="+srv.AppID()) {
				t.Errorf("url = %q, want /link/?ticket=…&app_id=%s", wsURL, srv.AppID())
			}
		})
	}

	t.Run("token as form parameter", func(t *testing.T) {
		resp, err := http.PostForm(srv.APIURL()+"apps.connections.open", url.Values{"token": {srv.AppToken()}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		if err := jsonDecode(resp.Body, &body); err != nil || body.OK || body.Error != "not_authed" {
			t.Errorf("body = %+v (%v), want not_authed", body, err)
		}
	})

	t.Run("socketmode stops on invalid_auth", func(t *testing.T) {
		api := slack.New(srv.BotToken(), slack.OptionAppLevelToken("xapp-1-wrong"), slack.OptionAPIURL(srv.APIURL()))
		err := socketmode.New(api, socketmode.OptionLog(quietLog)).RunContext(waitCtx(t))
		if err == nil || err.Error() != "invalid_auth" {
			t.Errorf("RunContext = %v, want invalid_auth", err)
		}
	})
}

func TestConnectionsOpenFailures(t *testing.T) {
	tests := []struct {
		name    string
		failure Failure
		check   func(t *testing.T, err error)
	}{
		{
			name: "429 with Retry-After", failure: Failure{Status: 429, RetryAfter: 1},
			check: func(t *testing.T, err error) {
				var rl *slack.RateLimitedError
				if !errors.As(err, &rl) || rl.RetryAfter != time.Second {
					t.Errorf("error = %v, want *slack.RateLimitedError with RetryAfter 1s", err)
				}
			},
		},
		{
			name: "slack error", failure: Failure{Error: "internal_error"},
			check: func(t *testing.T, err error) {
				if slackErrCode(err) != "internal_error" {
					t.Errorf("error = %v, want internal_error", err)
				}
			},
		},
		{
			name: "503", failure: Failure{Status: 503},
			check: func(t *testing.T, err error) {
				var sc slack.StatusCodeError
				if !errors.As(err, &sc) || sc.Code != 503 {
					t.Errorf("error = %v, want StatusCodeError 503", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			srv.FailNext("apps.connections.open", 1, tt.failure)
			_, _, err := webClient(srv).StartSocketModeContext(waitCtx(t))
			tt.check(t, err)
			// The failure is consumed: the client's next attempt connects.
			bot := startBot(t, webClient(srv))
			bot.next(t, socketmode.EventTypeHello)
			if got := srv.Stats().OpenCalls; got != 2 {
				t.Errorf("OpenCalls = %d, want 2", got)
			}
		})
	}
}

func TestDisconnectReasonsMakeClientReconnect(t *testing.T) {
	for _, reason := range []string{ReasonWarning, ReasonRefreshRequested, ReasonLinkDisabled, ReasonTooManyWebsockets} {
		t.Run(reason, func(t *testing.T) {
			srv := newTestServer(t)
			bot := startBot(t, webClient(srv))
			bot.next(t, socketmode.EventTypeHello)
			before := time.Now()
			if n := srv.Disconnect(reason); n != 1 {
				t.Fatalf("Disconnect reached %d connections, want 1", n)
			}
			ci, err := srv.WaitConnectionAfter(waitCtx(t), before)
			if err != nil {
				t.Fatalf("no reconnect after disconnect %s: %v", reason, err)
			}
			conns := srv.Connections()
			if conns[0].Outcome != "disconnect "+reason || conns[0].Live || ci.ID == conns[0].ID {
				t.Errorf("connections = %+v, want the first ended by disconnect %s and a new one live", conns, reason)
			}
			// The new connection carries envelopes.
			id := srv.SendSlashCommand(SlashCommand{Text: "help"})
			evt := bot.next(t, socketmode.EventTypeSlashCommand)
			if evt.Request.EnvelopeID != id {
				t.Errorf("envelope = %s, want %s", evt.Request.EnvelopeID, id)
			}
		})
	}
}

func TestDropConnectionsMakesClientReconnect(t *testing.T) {
	srv := newTestServer(t)
	bot := startBot(t, webClient(srv))
	bot.next(t, socketmode.EventTypeHello)
	before := time.Now()
	if n := srv.DropConnections(); n != 1 {
		t.Fatalf("dropped %d, want 1", n)
	}
	if _, err := srv.WaitConnectionAfter(waitCtx(t), before); err != nil {
		t.Fatalf("no reconnect after drop: %v", err)
	}
	if got := srv.Connections()[0].Outcome; got != "dropped" {
		t.Errorf("outcome = %q, want dropped", got)
	}
}

func TestSilentConnectionLosesEnvelopesUntilReplaced(t *testing.T) {
	srv := newTestServer(t, WithPingInterval(100*time.Millisecond), WithAckTimeout(300*time.Millisecond))
	bot := startBot(t, webClient(srv), socketmode.OptionPingInterval(time.Second))
	bot.next(t, socketmode.EventTypeHello)
	if _, err := srv.WaitStats(waitCtx(t), func(s Stats) bool { return s.Pongs > 0 }); err != nil {
		t.Fatalf("client never answered a PING: %v", err)
	}

	before := time.Now()
	if n := srv.SilenceConnections(); n != 1 {
		t.Fatalf("silenced %d, want 1", n)
	}
	// Sent while the only link is silent: Slack cannot tell, the envelope is lost.
	id := srv.SendSlashCommand(SlashCommand{Text: "status conf1"})
	rec, _ := srv.Envelope(id)
	if len(rec.Deliveries) != 1 || !rec.Deliveries[0].Lost || rec.DispatchFailed {
		t.Errorf("record = %+v, want one lost delivery", rec)
	}
	if st := srv.Stats(); st.Lost != 1 || st.Delivered != 0 {
		t.Errorf("stats = %+v, want one lost, none delivered", st)
	}
	if _, err := srv.WaitAck(waitCtx(t), id); !errors.Is(err, ErrAckTimeout) {
		t.Errorf("WaitAck on the lost envelope = %v, want ErrAckTimeout", err)
	}
	ci, err := srv.WaitConnectionAfter(waitCtx(t), before)
	if err != nil {
		t.Fatalf("ping watchdog did not replace the silent connection: %v", err)
	}
	// Slack retries on the new link; the client sees the envelope only now.
	if err := srv.Redeliver(id); err != nil {
		t.Fatal(err)
	}
	evt := bot.next(t, socketmode.EventTypeSlashCommand)
	if evt.Request.EnvelopeID != id || evt.Request.RetryAttempt != 1 {
		t.Fatalf("request = %+v, want %s with retry_attempt 1", evt.Request, id)
	}
	bot.sm.Ack(*evt.Request)
	if _, err := srv.WaitAck(waitCtx(t), id); err != nil {
		t.Errorf("WaitAck after redelivery: %v", err)
	}
	if rec, _ := srv.Envelope(id); len(rec.Deliveries) != 2 || rec.Deliveries[1].ConnectionID != ci.ID || rec.Deliveries[1].Lost {
		t.Errorf("deliveries = %+v, want the second on connection %d", rec.Deliveries, ci.ID)
	}
	// The server notices the client's close of the silent link on its own schedule.
	if _, err := srv.WaitStats(waitCtx(t), func(s Stats) bool { return s.LiveConnections == 1 }); err != nil {
		t.Fatalf("silent connection still registered: %v", err)
	}
	first := srv.Connections()[0]
	if !first.Silent || first.Live {
		t.Errorf("first connection = %+v, want silent and ended", first)
	}
}

func TestFlapAfterHelloCountsOpens(t *testing.T) {
	srv := newTestServer(t)
	srv.FlapAfterHello(true)
	startBot(t, webClient(srv))
	st, err := srv.WaitStats(waitCtx(t), func(s Stats) bool { return s.OpenCalls >= 5 && s.Hellos >= 5 })
	if err != nil {
		t.Fatalf("client did not keep reconnecting: %v", err)
	}
	if st.LiveConnections != 0 {
		t.Errorf("LiveConnections = %d while flapping, want 0", st.LiveConnections)
	}
	srv.FlapAfterHello(false)
	if err := srv.WaitConnections(waitCtx(t), 1); err != nil {
		t.Fatalf("no stable connection after flapping stopped: %v", err)
	}
	if got := srv.Connections()[0].Outcome; got != "flapped after hello" {
		t.Errorf("outcome = %q, want flapped after hello", got)
	}
}

func TestEleventhConnectionIsRefused(t *testing.T) {
	srv := newTestServer(t)
	for i := range DefaultMaxConnections {
		c := dialRaw(t, srv)
		if hello := c.read(t); hello["type"] != "hello" || hello["num_connections"] != float64(i+1) {
			t.Fatalf("connection %d: first frame %v, want hello with num_connections %d", i+1, hello, i+1)
		}
	}
	c := dialRaw(t, srv)
	got := c.read(t)
	want := decodeJSON(t, readFixture(t, "disconnect_too_many_websockets.real-capture.bolt-js-2238.json"))
	if d := shapeDiff("", shape(want), shape(got), true); len(d) > 0 || got["reason"] != ReasonTooManyWebsockets {
		t.Errorf("11th connection got %v; shape diff %v", got, d)
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(eventually))
	if _, _, err := c.ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("after too_many_websockets read = %v, want a normal close", err)
	}
	if st := srv.Stats(); st.LiveConnections != DefaultMaxConnections {
		t.Errorf("LiveConnections = %d, want %d", st.LiveConnections, DefaultMaxConnections)
	}
}

func TestUpgradeNeedsValidUnusedTicket(t *testing.T) {
	srv := newTestServer(t)
	_, wsURL, err := webClient(srv).StartSocketModeContext(waitCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	ws, resp, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatalf("first dial: %v", err)
	}
	_ = resp.Body.Close()
	defer ws.Close()
	for _, u := range []string{wsURL, strings.Replace(wsURL, "ticket=", "ticket=x", 1), srv.URL() + "/link/"} {
		u = strings.Replace(u, "http://", "ws://", 1)
		ws2, resp, err := websocket.DefaultDialer.Dial(u, nil)
		if err == nil {
			_ = ws2.Close()
			t.Errorf("dial %s succeeded, want refusal", u)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("dial %s: %v, want 401", u, err)
		}
	}
	if got := srv.Stats().RejectedUpgrades; got != 3 {
		t.Errorf("RejectedUpgrades = %d, want 3", got)
	}
}

func TestNoConnectionIsDispatchFailed(t *testing.T) {
	srv := newTestServer(t)
	srv.AddUser("U0AGENT1", "agent.one")
	_, ts, err := webClient(srv).PostMessage(DefaultChannelID, slack.MsgOptionText("anchor", false),
		slack.MsgOptionBlocks(buttonsBlocks("b", button("mpc.unmute", "unmute conf1 alice", "Unmute"))))
	if err != nil {
		t.Fatal(err)
	}
	slashID := srv.SendSlashCommand(SlashCommand{Text: "mute conf1 all", UserID: "U0AGENT1"})
	clickID, err := srv.ClickButton(DefaultUserID, DefaultChannelID, ts, "mpc.unmute")
	if err != nil {
		t.Fatal(err)
	}
	homeID := srv.SendAppHomeOpened(AppHomeOpened{UserID: "U0AGENT1"})

	for _, id := range []string{slashID, clickID, homeID} {
		rec, _ := srv.Envelope(id)
		if !rec.DispatchFailed || len(rec.Deliveries) != 0 || rec.TimedOut {
			t.Errorf("record %s = %+v, want dispatch failed, undelivered, no timeout", rec.Type, rec)
		}
		if _, err := srv.WaitAck(waitCtx(t), id); !errors.Is(err, ErrDispatchFailed) {
			t.Errorf("WaitAck(%s) = %v, want ErrDispatchFailed at once", rec.Type, err)
		}
	}
	if st := srv.Stats(); st.DispatchFailed != 3 || st.Delivered != 0 {
		t.Errorf("stats = %+v, want 3 dispatch failures", st)
	}
	// What the users saw: an error for the command and the click, nothing for the event.
	want := map[string]string{
		"U0AGENT1":    `/mpc failed with the error "dispatch_failed"`,
		DefaultUserID: "dispatch_failed",
	}
	for user, text := range want {
		got := srv.Ephemerals(user)
		if len(got) != 1 || got[0].Method != "dispatch_failed" || got[0].Text != text || got[0].Channel != DefaultChannelID {
			t.Errorf("%s sees %+v, want one dispatch_failed notice %q", user, got, text)
		}
	}

	// Never delivered later: a client that connects now gets nothing, and
	// the next command goes to it.
	bot := startBot(t, webClient(srv))
	bot.next(t, socketmode.EventTypeHello)
	id := srv.SendSlashCommand(SlashCommand{Text: "help"})
	if evt := bot.next(t, socketmode.EventTypeSlashCommand); evt.Request.EnvelopeID != id {
		t.Fatalf("first envelope after connecting = %s, want the new one %s", evt.Request.EnvelopeID, id)
	}
	// A redelivery of a failed event (Slack retries events) now goes through.
	if err := srv.Redeliver(homeID); err != nil {
		t.Fatal(err)
	}
	evt := bot.next(t, socketmode.EventTypeEventsAPI)
	if evt.Request.EnvelopeID != homeID || evt.Request.RetryAttempt != 1 {
		t.Errorf("redelivered event = %+v", evt.Request)
	}
	bot.sm.Ack(*evt.Request)
	if _, err := srv.WaitAck(waitCtx(t), homeID); err != nil {
		t.Errorf("WaitAck after redelivery: %v", err)
	}
}

func TestEnvelopesSpreadOverConnectionsExactlyOnce(t *testing.T) {
	srv := newTestServer(t, WithSeed(1))
	var bots []*testBot
	for range 2 {
		bots = append(bots, startBot(t, webClient(srv)))
	}
	if err := srv.WaitConnections(waitCtx(t), 2); err != nil {
		t.Fatal(err)
	}
	// Each bot acks whatever it gets.
	var mu sync.Mutex
	received := map[string]int{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, b := range bots {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case evt := <-b.events:
					if evt.Type == socketmode.EventTypeSlashCommand {
						mu.Lock()
						received[evt.Request.EnvelopeID]++
						mu.Unlock()
						b.sm.Ack(*evt.Request)
					}
				}
			}
		}()
	}
	const n = 20
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ids[i] = srv.SendSlashCommand(SlashCommand{Text: "status conf1"}) })
	}
	wg.Wait()
	connsUsed := map[int]bool{}
	for _, id := range ids {
		if _, err := srv.WaitAck(waitCtx(t), id); err != nil {
			t.Fatalf("WaitAck %s: %v", id, err)
		}
		rec, _ := srv.Envelope(id)
		if len(rec.Deliveries) != 1 {
			t.Errorf("envelope %s delivered %d times, want 1", id, len(rec.Deliveries))
		}
		connsUsed[rec.Deliveries[0].ConnectionID] = true
	}
	if got := len(srv.Envelopes()); got != n {
		t.Errorf("Envelopes() has %d records, want %d", got, n)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if received[id] != 1 {
			t.Errorf("envelope %s received %d times, want 1", id, received[id])
		}
	}
	if len(connsUsed) != 2 {
		t.Errorf("envelopes used %d connections, want both", len(connsUsed))
	}
}

func TestAckAcceptedOnLaterConnection(t *testing.T) {
	srv := newTestServer(t)
	c1 := dialRaw(t, srv)
	c1.read(t) // hello
	id := srv.SendSlashCommand(SlashCommand{Text: "help"})
	if env := c1.read(t); env["envelope_id"] != id {
		t.Fatalf("got %v, want envelope %s", env, id)
	}
	srv.DropConnections()
	c2 := dialRaw(t, srv)
	c2.read(t) // hello
	c2.write(t, `{"envelope_id":"`+id+`"}`)
	ack, err := srv.WaitAck(waitCtx(t), id)
	if err != nil {
		t.Fatalf("WaitAck: %v", err)
	}
	conns := srv.Connections()
	if ack.ConnectionID != conns[len(conns)-1].ID || ack.ConnectionID == conns[0].ID {
		t.Errorf("ack on connection %d, want the second one (%+v)", ack.ConnectionID, conns)
	}
}

func TestAckTimeoutRedeliveryAndDuplicates(t *testing.T) {
	srv := newTestServer(t, WithAckTimeout(200*time.Millisecond))
	bot := startBot(t, webClient(srv))
	bot.next(t, socketmode.EventTypeHello)

	id := srv.SendSlashCommand(SlashCommand{Text: "hold conf1 alice"})
	first := bot.next(t, socketmode.EventTypeSlashCommand)
	if first.Request.RetryAttempt != 0 {
		t.Errorf("first delivery retry_attempt = %d, want 0", first.Request.RetryAttempt)
	}
	// Not acked: the user would see an error.
	if _, err := srv.WaitAck(waitCtx(t), id); !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("WaitAck = %v, want ErrAckTimeout", err)
	}
	if st := srv.Stats(); st.AckTimeouts != 1 {
		t.Errorf("AckTimeouts = %d, want 1", st.AckTimeouts)
	}

	if err := srv.Redeliver(id); err != nil {
		t.Fatal(err)
	}
	retry := bot.next(t, socketmode.EventTypeSlashCommand)
	if retry.Request.EnvelopeID != id || retry.Request.RetryAttempt != 1 || retry.Request.RetryReason != "timeout" {
		t.Fatalf("redelivery = %+v, want same id, retry_attempt 1, retry_reason timeout", retry.Request)
	}
	bot.sm.Ack(*retry.Request)
	ack, err := srv.WaitAck(waitCtx(t), id)
	if err != nil || ack.Late {
		t.Fatalf("WaitAck after redelivery = %+v, %v; want a timely ack", ack, err)
	}
	bot.sm.Ack(*first.Request) // a duplicate
	st, err := srv.WaitStats(waitCtx(t), func(s Stats) bool { return s.DuplicateAcks == 1 })
	if err != nil || st.Acks != 2 {
		t.Fatalf("stats = %+v, %v; want 2 acks, 1 duplicate", st, err)
	}
	if ack, _ := srv.WaitAck(waitCtx(t), id); ack.Count != 2 {
		t.Errorf("Count = %d, want 2", ack.Count)
	}
	// The user saw the first timeout; the timely retry does not undo it.
	if st := srv.Stats(); st.AckTimeouts != 1 {
		t.Errorf("AckTimeouts after redelivery = %d, want 1", st.AckTimeouts)
	}
	if err := srv.Redeliver("no-such-envelope"); !errors.Is(err, ErrUnknownEnvelope) {
		t.Errorf("Redeliver unknown = %v, want ErrUnknownEnvelope", err)
	}
}

func TestLateAckIsATimeout(t *testing.T) {
	srv := newTestServer(t, WithAckTimeout(100*time.Millisecond))
	c := dialRaw(t, srv)
	c.read(t) // hello
	id := srv.SendSlashCommand(SlashCommand{Text: "help"})
	c.read(t)
	time.Sleep(300 * time.Millisecond) // make the ack late, whatever the machine's speed
	c.write(t, `{"envelope_id":"`+id+`","payload":{"text":"too late"}}`)
	if _, err := srv.WaitStats(waitCtx(t), func(s Stats) bool { return s.Acks == 1 }); err != nil {
		t.Fatal(err)
	}
	ack, err := srv.WaitAck(waitCtx(t), id)
	if !errors.Is(err, ErrAckTimeout) || !ack.Late || ack.Latency < 300*time.Millisecond {
		t.Errorf("WaitAck = %+v, %v; want a late ack and ErrAckTimeout", ack, err)
	}
	if got := srv.Ephemerals(DefaultUserID); len(got) != 0 {
		t.Errorf("late ack payload shown: %+v", got)
	}
}

func TestClientFramesThatAreNotAcks(t *testing.T) {
	srv := newTestServer(t)
	c := dialRaw(t, srv)
	c.read(t) // hello
	c.write(t, `not json`)
	c.write(t, `{"envelope_id":"never-sent"}`)
	c.write(t, `{"envelope_id":"x","payload":"`+repeat("a", maxAckBytes)+`"}`)
	st, err := srv.WaitStats(waitCtx(t), func(s Stats) bool {
		return s.BadFrames == 1 && s.UnknownAcks == 1 && s.DroppedAcks == 1
	})
	if err != nil {
		t.Errorf("stats = %+v: %v", st, err)
	}
}

func TestMalformedEnvelopesKeepTheConnection(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		want  socketmode.EventType
	}{
		{name: "unknown type", frame: `{"envelope_id":"e-unknown","type":"nonsense","payload":{}}`, want: socketmode.EventTypeErrorBadMessage},
		{name: "bad slash payload", frame: `{"envelope_id":"e-bad","type":"slash_commands","payload":{"is_enterprise_install":"maybe"}}`, want: socketmode.EventTypeErrorBadMessage},
		{name: "not JSON", frame: `not json`, want: socketmode.EventTypeIncomingError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			bot := startBot(t, webClient(srv))
			bot.next(t, socketmode.EventTypeHello)
			srv.SendEnvelope([]byte(tt.frame))
			bot.next(t, tt.want)
			id := srv.SendSlashCommand(SlashCommand{Text: "help"})
			if evt := bot.next(t, socketmode.EventTypeSlashCommand); evt.Request.EnvelopeID != id {
				t.Errorf("envelope = %s, want %s", evt.Request.EnvelopeID, id)
			}
			if st := srv.Stats(); st.ConnectionsOpened != 1 {
				t.Errorf("ConnectionsOpened = %d, want 1 (connection kept)", st.ConnectionsOpened)
			}
		})
	}
}

func TestCloseStopsEverything(t *testing.T) {
	srv, err := Start(WithPingInterval(20 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	bot := startBot(t, webClient(srv))
	bot.next(t, socketmode.EventTypeHello)
	dialRaw(t, srv).read(t)
	if _, err := srv.WaitStats(waitCtx(t), func(s Stats) bool { return s.Pings >= 2 }); err != nil {
		t.Fatal(err)
	}
	if srv.goroutines.Load() == 0 {
		t.Fatal("no server goroutines counted while connected")
	}
	waitErr := make(chan error, 1)
	go func() {
		_, err := srv.WaitForMessage(context.Background(), func(Message) bool { return false })
		waitErr <- err
	}()
	srv.Close()
	srv.Close() // idempotent
	if n := srv.goroutines.Load(); n != 0 {
		t.Errorf("%d server goroutines left after Close", n)
	}
	select {
	case err := <-waitErr:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("wait after Close = %v, want ErrClosed", err)
		}
	case <-time.After(eventually):
		t.Error("wait did not end on Close")
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
	}{
		{"bot token as app token", WithTokens("xoxb-1", "xoxb-2")},
		{"app token as bot token", WithTokens("xapp-1", "xapp-2")},
		{"zero ping interval", WithPingInterval(0)},
		{"no connections", WithMaxConnections(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if srv, err := Start(tt.opt); err == nil {
				srv.Close()
				t.Error("Start succeeded, want an error")
			}
		})
	}
}

func TestSilentNewConnectionsBoundReconnects(t *testing.T) {
	srv := newTestServer(t, WithPingInterval(100*time.Millisecond))
	srv.SetSilent(true)
	startBot(t, webClient(srv), socketmode.OptionPingInterval(500*time.Millisecond))
	// Each silent connection lives until slack-go's ping watchdog gives up.
	if _, err := srv.WaitStats(waitCtx(t), func(s Stats) bool { return s.ConnectionsOpened >= 2 }); err != nil {
		t.Fatalf("silent connection never replaced: %v", err)
	}
	for _, ci := range srv.Connections() {
		if !ci.Silent {
			t.Errorf("connection %+v not silent", ci)
		}
	}
	srv.SetSilent(false)
	if err := srv.WaitConnections(waitCtx(t), 1); err != nil {
		t.Fatalf("no normal connection after SetSilent(false): %v", err)
	}
}

func TestCustomIdentity(t *testing.T) {
	srv := NewServer(WithTokens("xapp-1-A0CUSTOM-1-secret", "xoxb-custom"), WithAppID("A0CUSTOM"),
		WithLogger(slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	if _, _, err := webClient(srv).PostMessage(DefaultChannelID, slack.MsgOptionText("hi", false)); err != nil {
		t.Fatalf("post with the custom bot token: %v", err)
	}
	bot := startBot(t, webClient(srv))
	if hello := bot.next(t, socketmode.EventTypeHello); hello.Request.ConnectionInfo.AppID != "A0CUSTOM" {
		t.Errorf("hello app id = %q, want A0CUSTOM", hello.Request.ConnectionInfo.AppID)
	}
	def := newTestServer(t)
	if _, _, err := slack.New(srv.BotToken(), slack.OptionAPIURL(def.APIURL())).PostMessage(DefaultChannelID, slack.MsgOptionText("hi", false)); slackErrCode(err) != "invalid_auth" {
		t.Errorf("custom token on a default server: %v, want invalid_auth", err)
	}
}
