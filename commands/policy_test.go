package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
		"list":         List{MPC: mpc, Page: 1},
		"help":         Help{},
		"calls":        Calls{},
		"calls here":   Calls{Here: true},
		"cancel-timer": CancelTimer{ID: "abc123"},
	}
	for _, a := range Actions {
		cmds[a.String()] = Change{Actions: []Action{a}, MPC: mpc, Members: members("101")}
		cmds[a.String()+" for 2m"] = Change{Actions: []Action{a}, MPC: mpc, Members: members("101"), For: 2 * time.Minute}
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
				case who == "agent" && strings.Contains(cname, "coach"):
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

// gates is a GroupFetcher with one gate per group.
type gates map[string]*gate

func (g gates) fetch(ctx context.Context, id string) ([]string, error) { return g[id].fetch(ctx, id) }

const (
	supGroup   = "SSUPS"
	agentGroup = "SAGENTS"
	inSupGrp   = "UINSUPGROUP"
	inAgentGrp = "UINAGENTGROUP"
)

// gatedPolicy returns a policy with supervisors supU + supGroup and agents
// agU + agentGroup, resolved through gated lookups.
func gatedPolicy(t *testing.T, sup, agent *gate) (*Policy, *GroupCache) {
	t.Helper()
	c := NewGroupCache(gates{supGroup: sup, agentGroup: agent}.fetch, GroupCacheConfig{TTL: time.Minute})
	p, err := NewPolicy(PolicyConfig{Supervisors: []string{supU, supGroup}, Agents: []string{agU, agentGroup}, Groups: c})
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}

type decision struct {
	ref *Refusal
	err error
}

func authorizeAsync(p *Policy, user string, cmd Command) chan decision {
	d := make(chan decision, 1)
	go func() {
		ref, err := p.Authorize(context.Background(), Requester{UserID: user, ChannelID: allow}, cmd)
		d <- decision{ref, err}
	}()
	return d
}

func await(t *testing.T, d chan decision) decision {
	t.Helper()
	select {
	case r := <-d:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Authorize is still waiting for a user-group lookup it does not need")
		return decision{}
	}
}

// Nobody waits for a lookup the decision does not need: the lookups named
// blocked never answer during the test.
func TestPolicyDoesNotWaitForUnneededGroups(t *testing.T) {
	mpc := name(t, "test_mpc_1")
	mute := Change{Actions: []Action{Mute}, MPC: mpc, Members: members("101")}
	coach := Change{Actions: []Action{Coach}, MPC: mpc, Members: members("101")}
	tests := []struct {
		name         string
		user         string
		cmd          Command
		supBlocked   bool // otherwise it answers at once
		agentBlocked bool
		want         string // refusal code, "" = allowed
		supCalls     int
		agentCalls   int
	}{
		{"agent by id mutes", agU, mute, true, true, "", 0, 0},
		{"agent by id lists the calls", agU, Calls{}, true, true, "", 0, 0},
		{"agent by id cancels a timer", agU, CancelTimer{ID: "t1"}, true, true, "", 0, 0},
		{"supervisor by id coaches", supU, coach, true, true, "", 0, 0},
		{"supervisor by id mutes", supU, mute, true, true, "", 0, 0},
		{"agents' group member mutes", inAgentGrp, mute, true, false, "", 1, 1},
		{"supervisors' group member mutes", inSupGrp, mute, false, true, "", 1, 1},
		{"supervisors' group member coaches", inSupGrp, coach, false, true, "", 1, 1},
		{"agent by id coaches", agU, coach, false, true, RefusedCoachSupervisor, 1, 0},
		{"agents' group member coaches", inAgentGrp, coach, false, false, RefusedCoachSupervisor, 1, 1},
		{"stranger mutes", strU, mute, false, false, RefusedNotAllowed, 1, 1},
		{"stranger asks for help", strU, Help{}, true, true, "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sup, agent := newGate([]string{inSupGrp}, nil), newGate([]string{inAgentGrp}, nil)
			for _, g := range []struct {
				gate    *gate
				blocked bool
			}{{sup, tt.supBlocked}, {agent, tt.agentBlocked}} {
				if g.blocked {
					t.Cleanup(g.gate.open)
				} else {
					g.gate.open()
				}
			}
			p, _ := gatedPolicy(t, sup, agent)
			got := await(t, authorizeAsync(p, tt.user, tt.cmd))
			code := ""
			if got.ref != nil {
				code = got.ref.Code
			}
			if code != tt.want || got.err != nil {
				t.Fatalf("Authorize = %+v, %v; want refusal %q and no error", got.ref, got.err, tt.want)
			}
			// A lookup that is started may still be reaching the fetcher.
			if tt.supCalls > 0 {
				eventually(t, "the supervisors' lookup", func() bool { return sup.count(supGroup) == tt.supCalls })
			}
			if tt.agentCalls > 0 {
				eventually(t, "the agents' lookup", func() bool { return agent.count(agentGroup) == tt.agentCalls })
			}
			if sup.count(supGroup) != tt.supCalls || agent.count(agentGroup) != tt.agentCalls {
				t.Fatalf("lookups: supervisors %d, agents %d; want %d, %d",
					sup.count(supGroup), agent.count(agentGroup), tt.supCalls, tt.agentCalls)
			}
		})
	}
}

// When the answer depends on a group, Authorize waits for it — and a
// failing lookup grants nothing.
func TestPolicyWaitsForTheGroupThatDecides(t *testing.T) {
	coach := Change{Actions: []Action{Coach}, MPC: name(t, "test_mpc_1"), Members: members("101")}
	tests := []struct {
		name string
		user string
		err  error
		want string
	}{
		{"supervisor via the group", inSupGrp, nil, ""},
		{"agent by id", agU, nil, RefusedCoachSupervisor},
		{"agent by id, lookup fails", agU, errors.New("slack: 503"), RefusedCoachSupervisor},
		{"supervisor via the group, lookup fails", inSupGrp, errors.New("slack: 503"), RefusedNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sup, agent := newGate([]string{inSupGrp}, tt.err), newGate(nil, nil)
			agent.open()
			p, c := gatedPolicy(t, sup, agent)
			d := authorizeAsync(p, tt.user, coach)
			eventually(t, "the supervisors' lookup", func() bool { return c.waitingFor(supGroup) == 1 })
			select {
			case r := <-d:
				t.Fatalf("Authorize decided before the supervisors' group answered: %+v, %v", r.ref, r.err)
			default:
			}
			sup.open()
			got := await(t, d)
			code := ""
			if got.ref != nil {
				code = got.ref.Code
			}
			if code != tt.want {
				t.Fatalf("refusal = %+v, want %q", got.ref, tt.want)
			}
			if (got.err != nil) != (tt.err != nil) {
				t.Fatalf("lookup error for the log = %v, want one: %v", got.err, tt.err != nil)
			}
		})
	}
}

// Twenty strangers at once cost one lookup per group.
func TestPolicyStrangersShareLookups(t *testing.T) {
	t.Parallel()
	sup, agent := newGate(nil, nil), newGate(nil, nil)
	p, c := gatedPolicy(t, sup, agent)
	const strangers = 20
	var ds []chan decision
	for i := range strangers {
		ds = append(ds, authorizeAsync(p, fmt.Sprintf("USTRANGER%d", i), List{MPC: name(t, "m"), Page: 1}))
	}
	eventually(t, "every stranger to wait for both lookups", func() bool {
		return c.waitingFor(supGroup) == strangers && c.waitingFor(agentGroup) == strangers
	})
	sup.open()
	agent.open()
	for _, d := range ds {
		if got := await(t, d); got.ref == nil || got.ref.Code != RefusedNotAllowed {
			t.Fatalf("stranger: %+v, %v; want not_allowed", got.ref, got.err)
		}
	}
	if sup.count(supGroup) != 1 || agent.count(agentGroup) != 1 {
		t.Fatalf("lookups: supervisors %d, agents %d; want 1 each", sup.count(supGroup), agent.count(agentGroup))
	}
}
