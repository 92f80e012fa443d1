package commands

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	supU  = "USUP1"
	agU   = "UAGENT1"
	strU  = "USTRANGER"
	grpSu = "SSUPGROUP"
	grpSv = "USUPVIAGROUP"
	allow = "CALLOWED"
	other = "COTHER"
)

// The full permission matrix: role × action × allowed/other channel.
// (Typed vs clicked goes through the same Authorize call; the bot's tests
// cover that a click is authorized for the clicking user.)
func TestPolicyMatrix(t *testing.T) {
	groups := staticGroups{grpSu: {grpSv: true}}
	p, err := NewPolicy(PolicyConfig{
		Supervisors: []string{supU, grpSu},
		Agents:      []string{agU},
		Channels:    []string{allow},
		Groups:      groups,
	})
	if err != nil {
		t.Fatal(err)
	}
	mpc := name(t, "test_mpc_1")
	cmds := map[string]Command{
		"list": List{MPC: mpc, Page: 1},
		"help": Help{},
	}
	for _, a := range Actions {
		cmds[a.String()] = Change{Actions: []Action{a}, MPC: mpc, Members: members("101")}
	}
	users := map[string]string{"supervisor": supU, "supervisor via group": grpSv, "agent": agU, "stranger": strU}
	for who, user := range users {
		for cname, cmd := range cmds {
			for _, ch := range []string{allow, other} {
				var want string // "" = allowed
				switch {
				case cname == "help":
				case ch == other:
					want = RefusedChannel
				case who == "stranger":
					want = RefusedNotAllowed
				case who == "agent" && (cname == "coach" || cname == "uncoach"):
					want = RefusedCoachSupervisor
				}
				t.Run(who+"/"+cname+"/"+ch, func(t *testing.T) {
					ref, err := p.Authorize(context.Background(), Requester{UserID: user, ChannelID: ch}, cmd)
					if err != nil {
						t.Fatalf("Authorize error: %v", err)
					}
					got := ""
					if ref != nil {
						got = ref.Code
					}
					if got != want {
						t.Fatalf("refusal = %q, want %q (%+v)", got, want, ref)
					}
					if ref != nil && (ref.Reason == "" || ref.Fix == "") {
						t.Fatalf("refusal without reason or fix: %+v", ref)
					}
				})
			}
		}
	}
}

func TestRefusalNamesUserAndVariable(t *testing.T) {
	p, err := NewPolicy(PolicyConfig{Agents: []string{agU}})
	if err != nil {
		t.Fatal(err)
	}
	mpc := name(t, "m")
	ref, _ := p.Authorize(context.Background(), Requester{UserID: strU, ChannelID: "C1"}, Change{Actions: []Action{Hold}, MPC: mpc, Members: members("all")})
	if ref == nil || !strings.Contains(ref.Reason, strU) || !strings.Contains(ref.Fix, EnvAgents) || !strings.Contains(ref.Fix, EnvSupervisors) {
		t.Fatalf("stranger refusal = %+v", ref)
	}
	ref, _ = p.Authorize(context.Background(), Requester{UserID: agU, ChannelID: "C1"}, Change{Actions: []Action{Coach}, MPC: mpc, Members: members("1")})
	if ref == nil || !strings.Contains(ref.Fix, EnvSupervisors) || !strings.Contains(ref.Fix, agU) {
		t.Fatalf("agent coach refusal = %+v", ref)
	}
}

func TestPolicyDenyByDefault(t *testing.T) {
	p, err := NewPolicy(PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Empty() {
		t.Fatal("empty policy is not Empty()")
	}
	ref, _ := p.Authorize(context.Background(), Requester{UserID: supU, ChannelID: "C1"}, List{MPC: name(t, "m"), Page: 1})
	if ref == nil || ref.Code != RefusedNotAllowed {
		t.Fatalf("empty policy allowed a list: %+v", ref)
	}
	var nilPolicy *Policy
	if r, _ := nilPolicy.Role(context.Background(), supU); r != Stranger {
		t.Fatalf("nil policy role = %v", r)
	}
}

func TestPolicyEveryone(t *testing.T) {
	p, err := NewPolicy(PolicyConfig{Agents: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := p.Role(context.Background(), "UANYONE"); r != Agent {
		t.Fatalf("role = %v, want agent", r)
	}
}

func TestNewPolicyErrors(t *testing.T) {
	tests := []struct {
		cfg  PolicyConfig
		want string
	}{
		{PolicyConfig{Supervisors: []string{"@alice"}}, "MPC_SUPERVISORS"},
		{PolicyConfig{Agents: []string{"alice"}}, "MPC_AGENTS"},
		{PolicyConfig{Channels: []string{"#general"}}, "MPC_CHANNELS"},
		{PolicyConfig{Agents: []string{"S0GROUP"}}, "group resolver"},
	}
	for _, tt := range tests {
		_, err := NewPolicy(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewPolicy(%+v) = %v, want error naming %q", tt.cfg, err, tt.want)
		}
	}
}

type staticGroups map[string]map[string]bool

func (s staticGroups) GroupMembers(_ context.Context, id string) (map[string]bool, error) {
	return s[id], nil
}

// fetchScript is a GroupFetcher whose answers a test controls.
type fetchScript struct {
	mu      sync.Mutex
	members []string
	err     error
	calls   int
}

func (f *fetchScript) fetch(context.Context, string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.members, f.err
}

func (f *fetchScript) set(members []string, err error) {
	f.mu.Lock()
	f.members, f.err = members, err
	f.mu.Unlock()
}

func TestGroupCacheOutageUsesLastKnown(t *testing.T) {
	var logs bytes.Buffer
	src := &fetchScript{members: []string{"U1"}}
	c := NewGroupCache(src.fetch, time.Minute, slog.New(slog.NewTextHandler(&logs, nil)))
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }

	p, err := NewPolicy(PolicyConfig{Supervisors: []string{"SGRP"}, Groups: c})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if r, err := p.Role(ctx, "U1"); r != Supervisor || err != nil {
		t.Fatalf("first lookup: %v, %v", r, err)
	}
	// Slack goes down and the entry expires: the refresh fails, the last
	// known membership is used, and the failure is logged.
	src.set(nil, errors.New("slack: 503"))
	now = now.Add(2 * time.Minute)
	if err := c.Refresh(ctx, []string{"SGRP"}); err != nil {
		t.Fatalf("Refresh with a known membership should not fail: %v", err)
	}
	if r, _ := p.Role(ctx, "U1"); r != Supervisor {
		t.Fatalf("during outage role = %v, want supervisor (last known)", r)
	}
	if !strings.Contains(logs.String(), "last known membership") {
		t.Fatalf("outage not logged: %s", logs.String())
	}
	// Slack comes back with a new membership.
	src.set([]string{"U2"}, nil)
	if err := c.Refresh(ctx, []string{"SGRP"}); err != nil {
		t.Fatal(err)
	}
	if r, _ := p.Role(ctx, "U1"); r != Stranger {
		t.Fatalf("after refresh U1 role = %v, want stranger", r)
	}
	if r, _ := p.Role(ctx, "U2"); r != Supervisor {
		t.Fatalf("after refresh U2 role = %v, want supervisor", r)
	}
}

func TestGroupCacheNeverFetchedFailsClosed(t *testing.T) {
	src := &fetchScript{err: errors.New("slack down")}
	c := NewGroupCache(src.fetch, time.Minute, nil)
	p, err := NewPolicy(PolicyConfig{Supervisors: []string{"SGRP"}, Groups: c})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := p.Authorize(context.Background(), Requester{UserID: "U1", ChannelID: "C1"}, List{MPC: name(t, "m"), Page: 1})
	if ref == nil || ref.Code != RefusedNotAllowed {
		t.Fatalf("refusal = %+v, want not_allowed", ref)
	}
	if err == nil {
		t.Fatal("the group lookup error was not reported for the log")
	}
}

func TestGroupCacheStaleServedWhileRefreshing(t *testing.T) {
	src := &fetchScript{members: []string{"U1"}}
	c := NewGroupCache(src.fetch, time.Minute, nil)
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctx := context.Background()
	if m, err := c.GroupMembers(ctx, "S1"); err != nil || !m["U1"] {
		t.Fatalf("GroupMembers = %v, %v", m, err)
	}
	src.set([]string{"U2"}, nil)
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	// Stale: the old answer at once, a refresh in the background.
	if m, _ := c.GroupMembers(ctx, "S1"); !m["U1"] {
		t.Fatalf("stale read = %v, want the last known membership", m)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, _ := c.GroupMembers(ctx, "S1")
		if m["U2"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("background refresh never landed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
