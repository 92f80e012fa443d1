package fleet

import (
	"context"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mpcbot/mpcbot/plivo"
)

// inFlightMemory is how long updates are remembered (as plivo.LocalInFlight
// does): longer than any call, and so any read back, lasts.
const inFlightMemory = 2 * time.Minute

// The shared log: KEYS[1] is the logical clock (INCR); each update is a hash
// <prefix>e:<id> {mpc, member, fields ",f1,f2,", sent, done} that expires
// after the memory, indexed per MPC in a sorted set <prefix>mpc:<mpc> scored
// by when it began (Redis's clock, ms). The entry keys are built in the
// scripts from the prefix: this needs a single Redis, not a cluster.

// beginScript: KEYS[1] clock; ARGV: prefix, mpc, member, fields, memory ms.
var beginScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local memory = tonumber(ARGV[5])
local clock = redis.call('INCR', KEYS[1])
-- The clock restarts at 1 when Redis loses its data: the time makes an id
-- from before such a loss never name an entry made after it.
local id = tostring(clock) .. '-' .. string.format('%.0f', now)
local e = ARGV[1] .. 'e:' .. id
local index = ARGV[1] .. 'mpc:' .. ARGV[2]
redis.call('HSET', e, 'mpc', ARGV[2], 'member', ARGV[3], 'fields', ARGV[4], 'sent', clock, 'done', 0)
redis.call('PEXPIRE', e, memory)
redis.call('ZADD', index, string.format('%.0f', now), id)
redis.call('ZREMRANGEBYSCORE', index, '-inf', string.format('%.0f', now - memory))
redis.call('PEXPIRE', index, memory)
return id
`)

// stampScript sets one logical time of an entry: KEYS[1] clock, KEYS[2]
// entry; ARGV: the hash field (sent or done).
var stampScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], redis.call('INCR', KEYS[1]))
end
return 1
`)

// changedScript is plivo.LocalInFlight.ChangedSince: ARGV: prefix, id,
// member, field, the AllMembers selector. Returns 1 or 0.
var changedScript = redis.NewScript(`
local self = redis.call('HMGET', ARGV[1] .. 'e:' .. ARGV[2], 'mpc', 'sent')
if not self[1] then return 1 end
local sent = tonumber(self[2])
local ids = redis.call('ZRANGE', ARGV[1] .. 'mpc:' .. self[1], 0, -1)
for _, oid in ipairs(ids) do
  if oid ~= ARGV[2] then
    local e = redis.call('HMGET', ARGV[1] .. 'e:' .. oid, 'member', 'fields', 'done')
    if e[1] then
      local done = tonumber(e[3])
      if (done == 0 or done >= sent) and (e[1] == ARGV[3] or e[1] == ARGV[5])
          and string.find(e[2], ',' .. ARGV[4] .. ',', 1, true) then
        return 1
      end
    end
  end
end
return 0
`)

// InFlight is the fleet's plivo.InFlight: every update is recorded both in
// the shared log on Redis (ordered by a Redis counter, so updates sent by
// other replicas count) and in a local one, so that with Redis down it
// degrades to per-process. ChangedSince answers true if either log says so,
// or when the shared log cannot be read for an update it holds (the safe
// answer, as for a forgotten update).
type InFlight struct {
	f     *Fleet
	local *plivo.LocalInFlight
}

var _ plivo.InFlight = (*InFlight)(nil)

// An InFlightID of this type is "<local id>|<shared id>"; the shared id is
// empty when Redis did not record the update.
const idSeparator = "|"

// Begin implements plivo.InFlight.
func (l *InFlight) Begin(ctx context.Context, mpc plivo.MPC, member plivo.Member, fields []plivo.Field) plivo.InFlightID {
	lid := l.local.Begin(ctx, mpc, member, fields)
	rid, _ := l.sharedBegin(ctx, mpc, member, fields)
	return plivo.InFlightID(string(lid) + idSeparator + rid)
}

// Resent implements plivo.InFlight.
func (l *InFlight) Resent(ctx context.Context, id plivo.InFlightID) {
	lid, rid := splitID(id)
	l.local.Resent(ctx, lid)
	if rid != "" {
		l.sharedStamp(ctx, rid, "sent")
	}
}

// End implements plivo.InFlight.
func (l *InFlight) End(ctx context.Context, id plivo.InFlightID) {
	lid, rid := splitID(id)
	l.local.End(ctx, lid)
	if rid != "" {
		l.sharedStamp(ctx, rid, "done")
	}
}

// ChangedSince implements plivo.InFlight.
func (l *InFlight) ChangedSince(ctx context.Context, id plivo.InFlightID, member plivo.Member, f plivo.Field) bool {
	lid, rid := splitID(id)
	if l.local.ChangedSince(ctx, lid, member, f) {
		return true
	}
	if rid == "" {
		return false
	}
	changed, err := l.sharedChangedSince(ctx, rid, member, f)
	return changed || err != nil
}

func splitID(id plivo.InFlightID) (local plivo.InFlightID, shared string) {
	lid, rid, _ := strings.Cut(string(id), idSeparator)
	return plivo.InFlightID(lid), rid
}

func (l *InFlight) prefix() string { return l.f.key("inflight:") }

func (l *InFlight) sharedBegin(ctx context.Context, mpc plivo.MPC, member plivo.Member, fields []plivo.Field) (string, error) {
	var b strings.Builder
	b.WriteString(",")
	for _, f := range fields {
		b.WriteString(string(f) + ",")
	}
	var id string
	err := l.f.do(ctx, "inflight begin", func(ctx context.Context) error {
		var err error
		id, err = beginScript.Run(ctx, l.f.rdb, []string{l.prefix() + "clock"},
			l.prefix(), mpc.PathSegment(), string(member), b.String(), inFlightMemory.Milliseconds()).Text()
		return err
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

func (l *InFlight) sharedStamp(ctx context.Context, rid, field string) {
	l.f.do(ctx, "inflight "+field, func(ctx context.Context) error {
		return stampScript.Run(ctx, l.f.rdb, []string{l.prefix() + "clock", l.prefix() + "e:" + rid}, field).Err()
	})
}

func (l *InFlight) sharedChangedSince(ctx context.Context, rid string, member plivo.Member, f plivo.Field) (bool, error) {
	var changed int64
	err := l.f.do(ctx, "inflight changed since", func(ctx context.Context) error {
		var err error
		changed, err = changedScript.Run(ctx, l.f.rdb, nil,
			l.prefix(), rid, string(member), string(f), string(plivo.AllMembers)).Int64()
		return err
	})
	return changed == 1, err
}
