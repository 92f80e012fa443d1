package slacktest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack/socketmode"
)

// dialRawN opens n raw connections and reads each one's hello.
func dialRawN(t *testing.T, srv *Server, n int) []*rawConn {
	t.Helper()
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = dialRaw(t, srv)
		conns[i].read(t) // hello
	}
	return conns
}

// deliveryPattern sends n slash commands and returns the connection each went to.
func deliveryPattern(t *testing.T, srv *Server, n int) []int {
	t.Helper()
	var got []int
	for range n {
		rec, _ := srv.Envelope(srv.SendSlashCommand(SlashCommand{Text: "help"}))
		if len(rec.Deliveries) != 1 {
			t.Fatalf("envelope delivered %d times, want once", len(rec.Deliveries))
		}
		got = append(got, rec.Deliveries[0].ConnectionID)
	}
	return got
}

func TestRandomSpreadIsReproducibleWithASeed(t *testing.T) {
	t.Parallel()
	const conns, sends = 3, 30
	pattern := func(seed uint64) []int {
		srv := newTestServer(t, WithSeed(seed))
		dialRawN(t, srv, conns)
		return deliveryPattern(t, srv, sends)
	}
	a, b, other := pattern(7), pattern(7), pattern(8)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different choices:\n%v\n%v", a, b)
	}
	if slices.Equal(a, other) {
		t.Errorf("seeds 7 and 8 chose alike: %v", a)
	}
	used := map[int]int{}
	for _, id := range a {
		used[id]++
	}
	if len(used) != conns {
		t.Errorf("%d sends used connections %v, want all %d", sends, used, conns)
	}
	// Not round-robin: some connection gets two envelopes in a row.
	repeated := false
	for i := 1; i < len(a); i++ {
		repeated = repeated || a[i] == a[i-1]
	}
	if !repeated {
		t.Errorf("choices %v look round-robin, want random", a)
	}
}

func TestRedeliverGoesToAnotherConnection(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	dialRawN(t, srv, 3)
	id := srv.SendSlashCommand(SlashCommand{Text: "help"})
	for range 10 {
		if err := srv.Redeliver(id); err != nil {
			t.Fatal(err)
		}
	}
	rec, _ := srv.Envelope(id)
	if len(rec.Deliveries) != 11 {
		t.Fatalf("%d deliveries, want 11", len(rec.Deliveries))
	}
	for i := 1; i < len(rec.Deliveries); i++ {
		prev, cur := rec.Deliveries[i-1], rec.Deliveries[i]
		if cur.ConnectionID == prev.ConnectionID || cur.RetryAttempt != i {
			t.Errorf("delivery %d = %+v after %+v, want another connection and retry_attempt %d", i, cur, prev, i)
		}
	}

	t.Run("the only connection gets it again", func(t *testing.T) {
		one := newTestServer(t)
		dialRawN(t, one, 1)
		id := one.SendSlashCommand(SlashCommand{Text: "help"})
		if err := one.Redeliver(id); err != nil {
			t.Fatal(err)
		}
		rec, _ := one.Envelope(id)
		if len(rec.Deliveries) != 2 || rec.Deliveries[0].ConnectionID != rec.Deliveries[1].ConnectionID {
			t.Errorf("deliveries = %+v, want both on the only connection", rec.Deliveries)
		}
	})
}

func TestRefreshOneConnectionOfTwoReplicas(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	a := startBot(t, webClient(srv))
	b := startBot(t, webClient(srv))
	a.next(t, socketmode.EventTypeHello)
	b.next(t, socketmode.EventTypeHello)
	open := srv.OpenConnections()
	if len(open) != 2 {
		t.Fatalf("OpenConnections = %+v, want 2", open)
	}
	target, other := open[0], open[1]
	if target.Host == "" || target.RemoteAddr == "" || target.RemoteAddr == other.RemoteAddr {
		t.Errorf("connections = %+v, want hosts and distinct client addresses", open)
	}
	before := time.Now()
	if err := srv.RefreshConnection(target.ID, false); err != nil {
		t.Fatal(err)
	}
	fresh, err := srv.WaitConnectionAfter(waitCtx(t), before)
	if err != nil {
		t.Fatalf("no reconnect after refresh: %v", err)
	}
	open = srv.OpenConnections()
	ids := []int{open[0].ID, open[1].ID}
	if len(open) != 2 || !slices.Contains(ids, other.ID) || !slices.Contains(ids, fresh.ID) {
		t.Errorf("open after refresh = %+v, want %d untouched and %d new", open, other.ID, fresh.ID)
	}
	for _, ci := range srv.Connections() {
		if ci.ID == target.ID && (ci.Outcome != "disconnect refresh_requested" || ci.Live) {
			t.Errorf("refreshed connection = %+v", ci)
		}
	}
	if err := srv.RefreshConnection(target.ID, false); !errors.Is(err, ErrNoSuchConnection) {
		t.Errorf("refresh of a closed connection = %v, want ErrNoSuchConnection", err)
	}
}

func TestRefreshWithWarning(t *testing.T) {
	t.Parallel()
	t.Run("slack-go closes on the warning and reconnects", func(t *testing.T) {
		srv := newTestServer(t) // the default 10 s lead: the client does not wait for it
		bot := startBot(t, webClient(srv))
		bot.next(t, socketmode.EventTypeHello)
		first := srv.OpenConnections()[0]
		before := time.Now()
		if err := srv.RefreshConnection(first.ID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.WaitConnectionAfter(waitCtx(t), before); err != nil {
			t.Fatalf("no reconnect after the warning: %v", err)
		}
		if _, err := srv.WaitStats(waitCtx(t), func(s Stats) bool { return s.LiveConnections == 1 }); err != nil {
			t.Fatal(err)
		}
		if got := srv.Connections()[0].Outcome; got != "closed by client after warning" {
			t.Errorf("outcome = %q, want closed by client after warning", got)
		}
	})

	t.Run("a client that stays gets envelopes, then refresh_requested", func(t *testing.T) {
		srv := newTestServer(t, WithRefreshWarningLead(2*time.Second))
		c := dialRawN(t, srv, 1)[0]
		info, err := srv.RefreshRandomConnection(true)
		if err != nil {
			t.Fatal(err)
		}
		if msg := c.read(t); msg["type"] != "disconnect" || msg["reason"] != ReasonWarning {
			t.Fatalf("first frame = %v, want disconnect/warning", msg)
		}
		id := srv.SendSlashCommand(SlashCommand{Text: "help"})
		if msg := c.read(t); msg["envelope_id"] != id {
			t.Fatalf("frame during the warning = %v, want envelope %s", msg, id)
		}
		if msg := c.read(t); msg["type"] != "disconnect" || msg["reason"] != ReasonRefreshRequested {
			t.Fatalf("frame = %v, want disconnect/refresh_requested", msg)
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(eventually))
		if _, _, err := c.ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Errorf("after refresh_requested read = %v, want a normal close", err)
		}
		if got := srv.Connections()[0]; got.ID != info.ID || got.Outcome != "disconnect refresh_requested" {
			t.Errorf("connection = %+v, want %d ended by refresh_requested", got, info.ID)
		}
	})

	t.Run("no connection", func(t *testing.T) {
		srv := newTestServer(t)
		if _, err := srv.RefreshRandomConnection(false); !errors.Is(err, ErrNoSuchConnection) {
			t.Errorf("RefreshRandomConnection = %v, want ErrNoSuchConnection", err)
		}
	})
}

func TestDropOneConnectionAndNumConnections(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	conns := dialRawN(t, srv, 3)
	second := srv.OpenConnections()[1]
	if err := srv.DropConnection(second.ID); err != nil {
		t.Fatal(err)
	}
	_ = conns[1].ws.SetReadDeadline(time.Now().Add(eventually))
	if _, _, err := conns[1].ws.ReadMessage(); err == nil || websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("dropped connection read = %v, want an abrupt end", err)
	}
	if err := srv.DropConnection(second.ID); !errors.Is(err, ErrNoSuchConnection) {
		t.Errorf("second drop = %v, want ErrNoSuchConnection", err)
	}
	// hello counts the open connections, this one included.
	c := dialRaw(t, srv)
	if hello := c.read(t); hello["num_connections"] != float64(3) {
		t.Errorf("hello = %v, want num_connections 3", hello)
	}
	if got := deliveryPattern(t, srv, 20); slices.Contains(got, second.ID) {
		t.Errorf("deliveries %v reached the dropped connection %d", got, second.ID)
	}
}
