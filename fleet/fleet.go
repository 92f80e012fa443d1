package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"golang.org/x/time/rate"

	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo"
)

// Defaults of Config.
const (
	DefaultCallTimeout   = 50 * time.Millisecond
	DefaultHeartbeat     = time.Second
	DefaultAliveFor      = 3 * time.Second
	DefaultProbeInterval = 250 * time.Millisecond
	DefaultPrefix        = "mpcbot:"
)

// Config configures a Fleet. URL, Rate and Burst are required.
type Config struct {
	// URL is REDIS_URL (see ParseURL).
	URL string
	// ReplicaID names this replica in the presence set; default
	// hostname-pid-random.
	ReplicaID string
	// Rate and Burst are the fleet's Plivo budget (requests per second and
	// bucket size), shared by every replica.
	Rate  rate.Limit
	Burst int
	// CallTimeout bounds every Redis call (default 50 ms).
	CallTimeout time.Duration
	// Heartbeat is how often the replica announces itself (default 1 s);
	// a replica seen within AliveFor (default 3 s) counts as alive.
	Heartbeat, AliveFor time.Duration
	// ProbeInterval is how often a degraded fleet tries Redis again
	// (default 250 ms).
	ProbeInterval time.Duration
	// Prefix starts every key (default "mpcbot:"), so that several bots or
	// tests can share one Redis.
	Prefix string
	// Logger receives the transitions healthy ⇄ degraded; default
	// slog.Default().
	Logger *slog.Logger
}

// Fleet is this replica's handle on the shared state. Open it once, hand its
// parts (Limiter, InFlight, Claims, Cache, Timers) to the bot, and Close it on
// shutdown. It is safe for concurrent use.
type Fleet struct {
	cfg    Config
	rdb    *redis.Client
	log    *slog.Logger
	health health

	replicasMu sync.Mutex
	replicas   []string

	limiter  *Limiter
	inFlight *InFlight
	claims   *Claims
	cache    *Cache
	timers   *Timers

	stop    context.CancelFunc
	stopped chan struct{}
	closing sync.Once
}

// errDegraded is returned by do while the fleet is degraded: the caller
// uses its fallback without asking Redis.
var errDegraded = errors.New("fleet: degraded, redis not asked")

// Open connects to Redis and starts the heartbeat. Redis being down is not
// an error: the fleet starts degraded and recovers by itself when Redis
// answers. Only a bad configuration fails.
func Open(ctx context.Context, cfg Config) (*Fleet, error) {
	opts, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if _, err := plivo.NewGCRA(cfg.Rate, cfg.Burst); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	cfg = withDefaults(cfg)
	quietRedisLogs()
	// Every call is bounded by its context (CallTimeout): no retries, one
	// dial attempt, no handshake extras that Redis 7.0 does not know.
	opts.MaxRetries = -1
	opts.DialerRetries = 1
	opts.DialTimeout = cfg.CallTimeout
	opts.ReadTimeout = cfg.CallTimeout
	opts.WriteTimeout = cfg.CallTimeout
	opts.PoolTimeout = cfg.CallTimeout
	// Warm connections: a burst of calls must not wait for dials.
	opts.MinIdleConns = max(opts.MinIdleConns, 4)
	opts.ContextTimeoutEnabled = true
	opts.DisableIdentity = true
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}

	f := &Fleet{cfg: cfg, rdb: redis.NewClient(opts), log: cfg.Logger, stopped: make(chan struct{})}
	f.health.init(f.log, cfg.URL)
	f.replicas = []string{cfg.ReplicaID}
	f.limiter = newLimiter(f)
	f.inFlight = &InFlight{f: f, local: plivo.NewLocalInFlight()}
	f.claims = &Claims{f: f, local: commands.NewLocalClaims()}
	f.cache = &Cache{f: f}
	f.timers = &Timers{f: f, shared: &redisTimers{f: f}, local: commands.NewLocalTimers(), doneLater: map[string]bool{}}

	f.heartbeat(ctx)
	loopCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	f.stop = stop
	go f.run(loopCtx)
	return f, nil
}

func withDefaults(cfg Config) Config {
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.AliveFor <= 0 {
		cfg.AliveFor = DefaultAliveFor
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = defaultReplicaID()
	}
	return cfg
}

func defaultReplicaID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "replica"
	}
	b := make([]byte, 3)
	rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Close stops the heartbeat, removes this replica from the presence set
// (bounded, best effort) and closes the connections.
func (f *Fleet) Close() error {
	var err error
	f.closing.Do(func() {
		f.stop()
		<-f.stopped
		ctx, cancel := context.WithTimeout(context.Background(), f.cfg.CallTimeout)
		defer cancel()
		f.rdb.ZRem(ctx, f.key("replicas"), f.cfg.ReplicaID) // best effort: the entry also ages out
		if cerr := f.rdb.Close(); cerr != nil {
			err = fmt.Errorf("fleet: close redis client: %w", cerr)
		}
	})
	return err
}

// ReplicaID returns this replica's name in the presence set.
func (f *Fleet) ReplicaID() string { return f.cfg.ReplicaID }

// Limiter returns the fleet's Plivo rate limiter.
func (f *Fleet) Limiter() *Limiter { return f.limiter }

// InFlight returns the fleet's log of updates in flight.
func (f *Fleet) InFlight() *InFlight { return f.inFlight }

// Claims returns the fleet's claims (commands.Claims).
func (f *Fleet) Claims() *Claims { return f.claims }

// Cache returns the fleet's short cache (commands.Cache).
func (f *Fleet) Cache() *Cache { return f.cache }

// Timers returns the fleet's timer store (commands.TimerStore).
func (f *Fleet) Timers() *Timers { return f.timers }

// Status returns whether the fleet's shared state is healthy, or degraded
// since when and why.
func (f *Fleet) Status() Status { return f.health.status() }

func (f *Fleet) key(name string) string { return f.cfg.Prefix + name }

// do runs one Redis call bounded by CallTimeout, unless the fleet is
// degraded (errDegraded: Redis is left alone until the probe finds it
// again). A failure other than redis.Nil degrades the fleet, unless it is
// the caller's own context that ended.
func (f *Fleet) do(ctx context.Context, op string, call func(ctx context.Context) error) error {
	if !f.health.healthy() {
		return errDegraded
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fleet: %s: %w", op, err)
	}
	cctx, cancel := context.WithTimeout(ctx, f.cfg.CallTimeout)
	defer cancel()
	err := call(cctx)
	if err == nil || errors.Is(err, redis.Nil) {
		return err
	}
	err = fmt.Errorf("fleet: %s: %w", op, err)
	if ctx.Err() == nil {
		f.health.degrade(err)
	}
	return err
}
