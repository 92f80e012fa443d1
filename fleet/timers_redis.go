package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo"
)

// redisTimers is the shared TimerStore: a hash <prefix>timers of id → the
// timer's JSON, and a sorted set <prefix>timers:due of id → when it may be
// claimed (µs since the epoch): its Due while unclaimed, the end of its
// lease once claimed. Add, Claim and Cancel are scripts; Supersede, which
// needs commands.Timer.Supersede (the rule lives once, in Go), is a
// WATCH/MULTI transaction on the hash. Claim only moves scores, so a
// Supersede that read a timer before a concurrent Claim is still right
// after it (as if it ran second); everything that changes the hash makes a
// concurrent Supersede retry.
type redisTimers struct {
	f *Fleet
}

var errAlreadyPending = errors.New("already pending")

// supersedeAttempts bounds the WATCH retries of one Supersede (all within
// one CallTimeout).
const supersedeAttempts = 20

// addScript: KEYS[1] hash, KEYS[2] due; ARGV: id, json, due µs.
var addScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
`)

// claimScript: KEYS[1] hash, KEYS[2] due; ARGV: now µs, lease µs. Returns
// the JSON of every timer claimable at now, leased until now+lease.
var claimScript = redis.NewScript(`
local now, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local out = {}
for _, id in ipairs(ids) do
  local timer = redis.call('HGET', KEYS[1], id)
  if timer then
    redis.call('ZADD', KEYS[2], string.format('%.0f', now + lease), id)
    out[#out + 1] = timer
  else
    redis.call('ZREM', KEYS[2], id)
  end
end
return out
`)

// cancelScript: KEYS[1] hash, KEYS[2] due; ARGV: id. Returns the JSON of
// the removed timer, or nil.
var cancelScript = redis.NewScript(`
local timer = redis.call('HGET', KEYS[1], ARGV[1])
if not timer then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return timer
`)

func (s *redisTimers) keys() []string {
	return []string{s.f.key("timers"), s.f.key("timers:due")}
}

// dueScore is t in µs, rounded up: a timer is never claimed early (at most
// 1 µs late).
func dueScore(t time.Time) int64 {
	us := t.UnixMicro()
	if time.UnixMicro(us).Before(t) {
		us++
	}
	return us
}

func (s *redisTimers) Add(ctx context.Context, t commands.Timer) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("fleet: add timer %s: %w", t.ID, err)
	}
	var added int64
	err = s.f.do(ctx, "timer add", func(ctx context.Context) error {
		var err error
		added, err = addScript.Run(ctx, s.f.rdb, s.keys(), t.ID, b, dueScore(t.Due)).Int64()
		return err
	})
	if err != nil {
		return err
	}
	if added == 0 {
		return fmt.Errorf("fleet: add timer %s: %w", t.ID, errAlreadyPending)
	}
	return nil
}

func (s *redisTimers) Claim(ctx context.Context, now time.Time, lease time.Duration) ([]commands.Timer, error) {
	var raw []string
	err := s.f.do(ctx, "timer claim", func(ctx context.Context) error {
		var err error
		raw, err = claimScript.Run(ctx, s.f.rdb, s.keys(), now.UnixMicro(), lease.Microseconds()).StringSlice()
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.decode(raw), nil
}

func (s *redisTimers) Cancel(ctx context.Context, id string) (commands.Timer, bool, error) {
	var raw string
	err := s.f.do(ctx, "timer cancel", func(ctx context.Context) error {
		var err error
		raw, err = cancelScript.Run(ctx, s.f.rdb, s.keys(), id).Text()
		return err
	})
	if errors.Is(err, redis.Nil) {
		return commands.Timer{}, false, nil
	}
	if err != nil {
		return commands.Timer{}, false, err
	}
	var t commands.Timer
	if err := json.Unmarshal([]byte(raw), &t); err != nil {
		return commands.Timer{}, false, fmt.Errorf("fleet: cancel timer %s: %w", id, err)
	}
	return t, true, nil
}

func (s *redisTimers) Done(ctx context.Context, id string) error {
	return s.f.do(ctx, "timer done", func(ctx context.Context) error {
		_, err := s.f.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HDel(ctx, s.keys()[0], id)
			p.ZRem(ctx, s.keys()[1], id)
			return nil
		})
		return err
	})
}

func (s *redisTimers) Pending(ctx context.Context) ([]commands.Timer, error) {
	var raw []string
	err := s.f.do(ctx, "timer pending", func(ctx context.Context) error {
		var err error
		raw, err = s.f.rdb.HVals(ctx, s.keys()[0]).Result()
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.decode(raw), nil
}

// exist reports which of ids are pending on Redis.
func (s *redisTimers) exist(ctx context.Context, ids []string) (map[string]bool, error) {
	var vals []any
	err := s.f.do(ctx, "timer exist", func(ctx context.Context) error {
		var err error
		vals, err = s.f.rdb.HMGet(ctx, s.keys()[0], ids...).Result()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for i, v := range vals {
		if v != nil {
			out[ids[i]] = true
		}
	}
	return out, nil
}

func (s *redisTimers) Supersede(ctx context.Context, mpc plivo.MPC, members []plivo.Member, fields []plivo.Field) ([]commands.Superseded, error) {
	return s.supersede(ctx, mpc, members, fields, time.Time{})
}

// supersede is Supersede, limited to the timers set before setBefore
// unless it is zero (a change replayed after an outage must not touch the
// timers set after it).
func (s *redisTimers) supersede(ctx context.Context, mpc plivo.MPC, members []plivo.Member, fields []plivo.Field, setBefore time.Time) ([]commands.Superseded, error) {
	var out []commands.Superseded
	hash, due := s.keys()[0], s.keys()[1]
	err := s.f.do(ctx, "timer supersede", func(ctx context.Context) error {
		for range supersedeAttempts {
			out = nil
			err := s.f.rdb.Watch(ctx, func(tx *redis.Tx) error {
				all, err := tx.HGetAll(ctx, hash).Result()
				if err != nil {
					return err
				}
				for id, raw := range all {
					var t commands.Timer
					if err := json.Unmarshal([]byte(raw), &t); err != nil {
						s.f.log.Error("fleet: a stored timer does not decode; left as is", "timer", id, "error", err)
						continue
					}
					if !t.SameMPC(mpc) || (!setBefore.IsZero() && !t.Set.Before(setBefore)) {
						continue
					}
					after, lost := t.Supersede(members, fields)
					if len(lost) > 0 {
						out = append(out, commands.Superseded{Timer: after, Lost: lost})
					}
				}
				if len(out) == 0 {
					return nil
				}
				_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
					for _, sup := range out {
						if sup.Timer.Finished() {
							p.HDel(ctx, hash, sup.Timer.ID)
							p.ZRem(ctx, due, sup.Timer.ID)
							continue
						}
						b, err := json.Marshal(sup.Timer)
						if err != nil {
							return err
						}
						p.HSet(ctx, hash, sup.Timer.ID, b)
					}
					return nil
				})
				return err
			}, hash)
			if !errors.Is(err, redis.TxFailedErr) {
				return err
			}
		}
		return fmt.Errorf("%d concurrent changes in a row", supersedeAttempts)
	})
	if err != nil {
		return nil, err
	}
	commands.SortSuperseded(out)
	return out, nil
}

// decode turns stored JSON into timers, in the stores' order. A timer that
// does not decode (it cannot be run) is logged and skipped.
func (s *redisTimers) decode(raw []string) []commands.Timer {
	out := make([]commands.Timer, 0, len(raw))
	for _, r := range raw {
		var t commands.Timer
		if err := json.Unmarshal([]byte(r), &t); err != nil {
			s.f.log.Error("fleet: a stored timer does not decode; skipped", "error", err)
			continue
		}
		out = append(out, t)
	}
	commands.SortTimers(out)
	return out
}
