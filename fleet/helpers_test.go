package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mpcbot/mpcbot/fleet/redistest"
)

// sharedRedis serves the tests that do not hurt their server; each uses its
// own key prefix. Fault tests start their own (newServer).
var sharedRedis *redistest.Server

func TestMain(m *testing.M) {
	s, err := redistest.Start(redistest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet tests need a real redis-server:", err)
		os.Exit(1)
	}
	sharedRedis = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

func newServer(t testing.TB) *redistest.Server {
	t.Helper()
	s, err := redistest.Start(redistest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var prefixSeq atomic.Int64

// uniquePrefix keeps tests sharing a server apart.
func uniquePrefix(t testing.TB) string {
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "_")
	return fmt.Sprintf("test:%s:%d:", name, prefixSeq.Add(1))
}

// testConfig is a Config with short times for tests. CallTimeout is long:
// on a busy machine (-race, 2 cores, other test binaries) a call may well
// take more than the production 50 ms, even more than a second, and the
// tests of what the shared state means must not degrade by accident; the
// tests of the bound set it to 50 ms.
func testConfig(t testing.TB, url, prefix string) Config {
	return Config{
		URL:           url,
		Rate:          100,
		Burst:         10,
		CallTimeout:   10 * time.Second,
		Heartbeat:     50 * time.Millisecond,
		AliveFor:      500 * time.Millisecond,
		ProbeInterval: 25 * time.Millisecond,
		Prefix:        prefix,
	}
}

// openFleet opens a Fleet with cfg (Logger: a recorder unless set) and
// closes it at the end of the test.
func openFleet(t testing.TB, cfg Config) (*Fleet, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(rec)
	}
	f, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f, rec
}

// openReplicas opens n fleets sharing url and prefix, with ids r0…, and
// waits until each sees all n.
func openReplicas(t testing.TB, n int, url string, tweak func(*Config)) []*Fleet {
	t.Helper()
	prefix := uniquePrefix(t)
	var fs []*Fleet
	for i := range n {
		cfg := testConfig(t, url, prefix)
		cfg.ReplicaID = fmt.Sprintf("r%d", i)
		if tweak != nil {
			tweak(&cfg)
		}
		f, _ := openFleet(t, cfg)
		fs = append(fs, f)
	}
	for _, f := range fs {
		waitFor(t, 5*time.Second, fmt.Sprintf("%s to see %d replicas", f.ReplicaID(), n), func() bool { return len(f.Replicas()) == n })
	}
	return fs
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// client returns a plain go-redis client of a server, for test setup.
func client(t testing.TB, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// logRecorder is a slog.Handler that keeps every record as text.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Time.Format("15:04:05.000") + " " + rec.Level.String() + " " + rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	r.mu.Lock()
	r.lines = append(r.lines, b.String())
	r.mu.Unlock()
	return nil
}

func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// count returns how many records contain s.
func (r *logRecorder) count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

func (r *logRecorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// cutOff makes every command of Redis's default user (the fleets' user)
// fail at once with NOPERM while the data stays, without any timing: an
// outage that neither loses data nor depends on the machine's speed. The
// returned function ends it.
func cutOff(t testing.TB, srv *redistest.Server) (restore func()) {
	t.Helper()
	ctx := context.Background()
	admin := client(t, srv.URL())
	if err := admin.Do(ctx, "ACL", "SETUSER", "admin", "on", ">x", "+@all", "~*", "&*").Err(); err != nil {
		t.Fatal(err)
	}
	opts, _ := redis.ParseURL(srv.URL())
	opts.Username, opts.Password = "admin", "x"
	opts.PoolSize = 1
	root := redis.NewClient(opts)
	t.Cleanup(func() { root.Close() })
	if err := root.Do(ctx, "ACL", "SETUSER", "default", "-@all").Err(); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := root.Do(ctx, "ACL", "SETUSER", "default", "+@all").Err(); err != nil {
			t.Fatal(err)
		}
	}
}
