package slacktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// eventually is the generous timeout for "eventually" waits.
const eventually = 10 * time.Second

func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	t.Cleanup(cancel)
	return ctx
}

func newTestServer(t *testing.T, opts ...Option) *Server {
	t.Helper()
	srv, err := Start(opts...)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv
}

var quietLog = log.New(io.Discard, "", 0)

// webClient returns the real slack-go Web API client pointed at srv.
func webClient(srv *Server, opts ...slack.Option) *slack.Client {
	all := append([]slack.Option{
		slack.OptionAppLevelToken(srv.AppToken()), slack.OptionAPIURL(srv.APIURL()), slack.OptionLog(quietLog),
	}, opts...)
	return slack.New(srv.BotToken(), all...)
}

// testBot runs the real slack-go socketmode client against the fake and
// forwards the interesting events to a channel.
type testBot struct {
	sm     *socketmode.Client
	events chan socketmode.Event
	done   chan error
	cancel context.CancelFunc
}

func startBot(t *testing.T, api *slack.Client, opts ...socketmode.Option) *testBot {
	t.Helper()
	opts = append([]socketmode.Option{socketmode.OptionLog(quietLog)}, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	b := &testBot{
		sm: socketmode.New(api, opts...), events: make(chan socketmode.Event, 100),
		done: make(chan error, 1), cancel: cancel,
	}
	go func() { b.done <- b.sm.RunContext(ctx) }()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-b.sm.Events:
				switch evt.Type {
				case socketmode.EventTypeConnecting, socketmode.EventTypeConnected, socketmode.EventTypeConnectionError:
					continue // noise during reconnect loops
				}
				select {
				case b.events <- evt:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-b.done:
		case <-time.After(eventually):
			t.Errorf("socketmode client did not stop")
		}
	})
	return b
}

// next waits for the next event of type typ, skipping others.
func (b *testBot) next(t *testing.T, typ socketmode.EventType) socketmode.Event {
	t.Helper()
	timeout := time.After(eventually)
	for {
		select {
		case evt := <-b.events:
			if evt.Type == typ {
				return evt
			}
		case err := <-b.done:
			t.Fatalf("socketmode client stopped while waiting for %s: %v", typ, err)
		case <-timeout:
			t.Fatalf("no %s event within %v", typ, eventually)
		}
	}
}

// rawConn is a bare websocket client for protocol-level checks.
type rawConn struct {
	ws *websocket.Conn
}

func dialRaw(t *testing.T, srv *Server) *rawConn {
	t.Helper()
	info, wsURL, err := webClient(srv).StartSocketModeContext(waitCtx(t))
	if err != nil || info == nil {
		t.Fatalf("apps.connections.open: %v", err)
	}
	h := http.Header{"Origin": {"https://api.slack.com"}}
	ws, resp, err := websocket.DefaultDialer.Dial(wsURL, h)
	if err != nil {
		t.Fatalf("dial %s: %v", wsURL, err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = ws.Close() })
	return &rawConn{ws: ws}
}

func (c *rawConn) read(t *testing.T) map[string]any {
	t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(eventually))
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("frame %s is not a JSON object: %v", data, err)
	}
	return m
}

func (c *rawConn) write(t *testing.T, frame string) {
	t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		t.Fatalf("write frame: %v", err)
	}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "slack", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return b
}

// shape reduces JSON to its structure: object keys with the shape of their
// values, arrays by their first element, scalars by JSON type.
func shape(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = shape(e)
		}
		return out
	case []any:
		if len(x) == 0 {
			return []any{}
		}
		return []any{shape(x[0])}
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	default:
		return "null"
	}
}

// shapeDiff lists where got's shape lacks or differs from want's; extra keys
// in got are reported only when exact is set.
func shapeDiff(path string, want, got any, exact bool) []string {
	var diffs []string
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want object, got %v", path, got)}
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, path+"."+k+": missing")
				continue
			}
			diffs = append(diffs, shapeDiff(path+"."+k, wv, gv, exact)...)
		}
		if exact {
			for k := range g {
				if _, ok := w[k]; !ok {
					diffs = append(diffs, path+"."+k+": unexpected")
				}
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want array, got %v", path, got)}
		}
		if len(w) > 0 && len(g) > 0 {
			diffs = append(diffs, shapeDiff(path+"[0]", w[0], g[0], exact)...)
		}
	default:
		// A null in a fixture matches anything (e.g. "enterprise": null).
		if want != "null" && want != got {
			diffs = append(diffs, fmt.Sprintf("%s: want %v, got %v", path, want, got))
		}
	}
	sort.Strings(diffs)
	return diffs
}

func decodeJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

// rawBlock lets tests send any block JSON through slack-go's MsgOptionBlocks.
type rawBlock string

func (rawBlock) BlockType() slack.MessageBlockType { return "raw" }
func (rawBlock) ID() string                        { return "" }
func (b rawBlock) MarshalJSON() ([]byte, error)    { return []byte(b), nil }

func slackErrCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	if err == nil {
		return ""
	}
	return "other: " + err.Error()
}

func repeat(s string, n int) string { return strings.Repeat(s, n) }

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// postJSONWithBearer posts a JSON body with a bearer token and decodes the answer.
func postJSONWithBearer(u, token, body string) (map[string]any, error) {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := jsonDecode(resp.Body, &m); err != nil {
		return nil, fmt.Errorf("status %d: %w", resp.StatusCode, err)
	}
	return m, nil
}

// jsonEqual reports whether got holds the same JSON value as want ("" = no JSON).
func jsonEqual(got json.RawMessage, want string) bool {
	if len(got) == 0 || want == "" {
		return len(got) == 0 && want == ""
	}
	var g, w any
	if json.Unmarshal(got, &g) != nil || json.Unmarshal([]byte(want), &w) != nil {
		return false
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	return string(gb) == string(wb)
}
