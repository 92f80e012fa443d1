package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"
)

var quietRedis sync.Once

// debugLogging sends go-redis's own log lines (one per failed dial, which
// would flood stderr while Redis is down) to slog.Default at Debug level;
// the fleet's Status and its transition logs say what matters.
type debugLogging struct{}

func (debugLogging) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}

func quietRedisLogs() { quietRedis.Do(func() { redis.SetLogger(debugLogging{}) }) }
