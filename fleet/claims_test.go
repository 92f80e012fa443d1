package fleet

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestClaimsExactlyOnceAcrossReplicas: three replicas, four goroutines each,
// race to claim the same keys; each key has exactly one winner.
func TestClaimsExactlyOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	fs := openReplicas(t, 3, sharedRedis.URL(), nil)
	const keys = 200
	var wins [keys]atomic.Int32
	var wg sync.WaitGroup
	for _, f := range fs {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range keys {
					if f.Claims().Claim(context.Background(), fmt.Sprint("envelope-", k), time.Minute) {
						wins[k].Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	for k := range keys {
		if n := wins[k].Load(); n != 1 {
			t.Errorf("key %d claimed %d times", k, n)
		}
	}
	for _, f := range fs {
		if !f.Status().Healthy {
			t.Fatalf("%s degraded: %s", f.ReplicaID(), f.Status().Reason)
		}
	}
}

func TestClaimExpires(t *testing.T) {
	t.Parallel()
	fs := openReplicas(t, 2, sharedRedis.URL(), nil)
	ctx := context.Background()
	if !fs[0].Claims().Claim(ctx, "tap", 150*time.Millisecond) {
		t.Fatal("first claim not first")
	}
	if fs[1].Claims().Claim(ctx, "tap", 150*time.Millisecond) {
		t.Fatal("second claim on another replica within the ttl was first")
	}
	// A claim that lost takes nothing: it must not hold the key for its
	// own (longer) ttl.
	if fs[1].Claims().Claim(ctx, "tap", time.Hour) || fs[0].Claims().Claim(ctx, "tap", time.Hour) {
		t.Fatal("a claim within the ttl was first")
	}
	waitFor(t, 2*time.Second, "the claim to expire", func() bool {
		return fs[1].Claims().Claim(ctx, "tap", time.Minute)
	})
}

// TestClaimsFallBackToTheProcess: with Redis down each replica still
// refuses its own duplicates; a key it claimed before is not first again
// after Redis lost it.
func TestClaimsFallBackToTheProcess(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	fs := openReplicas(t, 2, srv.URL(), nil)
	ctx := context.Background()
	if !fs[0].Claims().Claim(ctx, "before", time.Minute) {
		t.Fatal("first claim not first")
	}
	srv.Kill()
	waitFor(t, 2*time.Second, "degraded", func() bool { return !fs[0].Status().Healthy })
	if !fs[0].Claims().Claim(ctx, "during", time.Minute) || fs[0].Claims().Claim(ctx, "during", time.Minute) {
		t.Fatal("per process: a duplicate was not refused")
	}
	if !fs[1].Claims().Claim(ctx, "during", time.Minute) {
		t.Fatal("per process: another replica's memory answered")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "recovery", func() bool { return fs[0].Status().Healthy })
	if fs[0].Claims().Claim(ctx, "before", time.Minute) {
		t.Fatal("a key this process holds was first again after Redis lost it")
	}
}

func TestCache(t *testing.T) {
	t.Parallel()
	fs := openReplicas(t, 2, sharedRedis.URL(), nil)
	ctx := context.Background()
	if _, ok := fs[0].Cache().Get(ctx, "calls"); ok {
		t.Fatal("hit on an empty cache")
	}
	fs[0].Cache().Set(ctx, "calls", []byte(`["mpc 1"]`), 150*time.Millisecond)
	if v, ok := fs[1].Cache().Get(ctx, "calls"); !ok || string(v) != `["mpc 1"]` {
		t.Fatalf("another replica reads %q %v", v, ok)
	}
	waitFor(t, 2*time.Second, "the entry to expire", func() bool {
		_, ok := fs[1].Cache().Get(ctx, "calls")
		return !ok
	})
	fs[0].Cache().Set(ctx, "never", []byte("x"), 0)
	if _, ok := fs[0].Cache().Get(ctx, "never"); ok {
		t.Fatal("a ttl of 0 stored something")
	}
}
