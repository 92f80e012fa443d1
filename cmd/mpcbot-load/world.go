package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/fleet/redistest"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// buildBot compiles ./cmd/mpcbot into dir and returns the binary's path.
// With overlay set (see pprofOverlay), the build adds the files it names.
func buildBot(ctx context.Context, dir, overlay string) (string, error) {
	bin := filepath.Join(dir, "mpcbot")
	args := []string{"build", "-o", bin}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "github.com/mpcbot/mpcbot/cmd/mpcbot")...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/mpcbot: %w\n%s", err, out)
	}
	return bin, nil
}

// world is one run of the bot — one process, or a fleet of replicas
// sharing a Redis — with the fake Slack and the Plivo simulator living in
// this process. Every replica uses the same app token, so the fake Slack
// spreads envelopes over all their connections.
type world struct {
	slack *slacktest.Server
	plivo *plivotest.Server
	// redis is nil for a single process without REDIS_URL.
	redis *redistest.Server
	bots  []*replica
	// pprofAddr is the first replica's pprof listener (empty unless -pprof).
	pprofAddr string
}

// worldConfig is what differs between phases.
type worldConfig struct {
	name string
	// env is added to (and overrides) the bots' base environment.
	env map[string]string
	// accountLimit is the simulator's account budget per 5 s (0 = off).
	accountLimit int
	// replicas is the number of bot processes (0 means 1).
	replicas int
	// redis starts a redis-server and gives every replica its REDIS_URL.
	redis bool
}

// connectionsPerBot is SLACK_CONNECTIONS as the bots will read it.
func connectionsPerBot(o *options, wc worldConfig) int {
	v, ok := o.childEnv["SLACK_CONNECTIONS"]
	if !ok {
		v, ok = wc.env["SLACK_CONNECTIONS"]
	}
	if n, err := strconv.Atoi(v); ok && err == nil && n > 0 {
		return n
	}
	return 2 // the bot's default
}

// startWorld starts the fakes (and Redis), then the bot processes, and
// waits until every one is ready and every connection is open — and, with
// Redis, until each replica sees the whole fleet.
func startWorld(ctx context.Context, o *options, wc worldConfig) (*world, error) {
	w := &world{}
	n := max(wc.replicas, 1)
	var err error
	w.slack, err = slacktest.Start()
	if err != nil {
		return nil, fmt.Errorf("fake Slack: %w", err)
	}
	limit := plivotest.WithAccountLimit(0, 0)
	if wc.accountLimit > 0 {
		limit = plivotest.WithAccountLimit(wc.accountLimit, plivotest.DefaultAccountWindow)
	}
	w.plivo, err = plivotest.Start(plivotest.WithSampleMPC(), plivotest.WithLogLimit(o.plivoLogLimit), limit)
	if err != nil {
		w.closeFakes()
		return nil, fmt.Errorf("Plivo simulator: %w", err)
	}
	if wc.redis {
		w.redis, err = redistest.Start(redistest.Options{})
		if err != nil {
			w.closeFakes()
			return nil, fmt.Errorf("Redis: %w", err)
		}
	}
	for i := 1; i <= n; i++ {
		env, err := w.botEnv(o, wc)
		if err != nil {
			w.abort()
			return nil, err
		}
		if i == 1 && o.pprofDir != "" {
			if w.pprofAddr, err = freeAddr(); err != nil {
				w.abort()
				return nil, err
			}
			env[pprofEnv] = w.pprofAddr
		}
		name := wc.name
		if n > 1 {
			name = fmt.Sprintf("%s-r%d", wc.name, i)
		}
		r, err := startReplica(o.bin, o.botCPUs, i, env, filepath.Join(o.workDir, name+".log"))
		if err != nil {
			w.abort()
			return nil, err
		}
		w.bots = append(w.bots, r)
	}
	if err := w.waitReady(ctx, o, wc, 30*time.Second); err != nil {
		var tails string
		for _, r := range w.bots {
			tails += fmt.Sprintf("\nlast lines of bot %d's log:\n%s", r.index, r.logTail(20))
		}
		w.abort()
		return nil, fmt.Errorf("%w%s", err, tails)
	}
	return w, nil
}

// botEnv is one replica's environment: the fakes' addresses and tokens, a
// health server on a free port, then the phase's and the command line's
// settings.
func (w *world) botEnv(o *options, wc worldConfig) (map[string]string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env := map[string]string{
		"SLACK_APP_TOKEN":    w.slack.AppToken(),
		"SLACK_BOT_TOKEN":    w.slack.BotToken(),
		"SLACK_API_URL":      w.slack.APIURL(),
		"PLIVO_AUTH_ID":      w.plivo.AuthID,
		"PLIVO_AUTH_TOKEN":   w.plivo.AuthToken,
		"PLIVO_API_URL":      w.plivo.URL,
		"MPC_SUPERVISORS":    "*",
		"HTTP_ADDR":          addr,
		"LOG_LEVEL":          o.logLevel,
		"LOG_FORMAT":         "json",
		"SHUTDOWN_GRACE":     "5s",
		"SLACK_PING_TIMEOUT": "30s",
	}
	if w.redis != nil {
		env["REDIS_URL"] = w.redis.URL()
	}
	for k, v := range wc.env {
		env[k] = v
	}
	for k, v := range o.childEnv {
		env[k] = v
	}
	return env, nil
}

// waitReady waits until every replica answers /readyz 200, every Socket
// Mode connection of the fleet is open and, with Redis, every replica
// counts the whole fleet (mpcbot_fleet_replicas), which its fallback
// limiter divides the budget by.
func (w *world) waitReady(ctx context.Context, o *options, wc worldConfig, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for _, r := range w.bots {
		if err := r.waitReady(ctx); err != nil {
			return err
		}
	}
	want := len(w.bots) * connectionsPerBot(o, wc)
	if err := w.slack.WaitConnections(ctx, want); err != nil {
		return fmt.Errorf("the bots did not open %d Socket Mode connections within %s (%d open): %w", want, limit, len(w.slack.OpenConnections()), err)
	}
	if w.redis == nil {
		return nil
	}
	for _, r := range w.bots {
		for {
			n, ok := r.metric(ctx, "mpcbot_fleet_replicas")
			if ok && int(n) == len(w.bots) {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("bot %d counts %g replicas, not %d, after %s", r.index, n, len(w.bots), limit)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// bot returns the first (for single-process phases, the only) replica.
func (w *world) bot() *replica { return w.bots[0] }

// stop stops every replica at once (SIGTERM, then a kill after limit). The
// fakes stay up: replies sent while draining are still recorded. Call
// closeFakes afterwards.
func (w *world) stop(limit time.Duration) error {
	errs := make([]error, len(w.bots))
	var wg sync.WaitGroup
	for i, r := range w.bots {
		wg.Go(func() { errs[i] = r.stop(limit) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// abort kills the replicas and closes the fakes (a failed start).
func (w *world) abort() {
	for _, r := range w.bots {
		r.kill()
	}
	w.closeFakes()
}

// closeFakes stops the fake Slack, the Plivo simulator and Redis, and
// closes the bots' log files.
func (w *world) closeFakes() {
	if w.slack != nil {
		w.slack.Close()
	}
	if w.plivo != nil {
		w.plivo.Close()
	}
	if w.redis != nil {
		_ = w.redis.Close()
	}
	for _, r := range w.bots {
		if r.logFile != nil {
			r.logFile.Close()
		}
	}
}

// logLines counts the log lines of every replica.
func (w *world) logLines() int {
	n := 0
	for _, r := range w.bots {
		n += r.logLines()
	}
	return n
}

// logPaths returns the replicas' log files, by replica index - 1.
func (w *world) logPaths() []string {
	paths := make([]string, len(w.bots))
	for i, r := range w.bots {
		paths[i] = r.logPath
	}
	return paths
}

// pids returns the replicas' process ids.
func (w *world) pids() []int {
	pids := make([]int, len(w.bots))
	for i, r := range w.bots {
		pids[i] = r.pid()
	}
	return pids
}
