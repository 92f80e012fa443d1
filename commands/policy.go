package commands

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Role is what a Slack user may do with mpcbot.
type Role int

// Roles, from least to most privileged.
const (
	// Stranger may do nothing but read the help.
	Stranger Role = iota
	// Agent may list, mute, hold (and undo them), but not coach.
	Agent
	// Supervisor may do everything, including coach and uncoach.
	Supervisor
)

// String returns the role's name.
func (r Role) String() string {
	switch r {
	case Agent:
		return "agent"
	case Supervisor:
		return "supervisor"
	}
	return "stranger"
}

// Requester is who sent a request and from where, by immutable Slack ids
// (names are for display and audit only, never for access decisions).
type Requester struct {
	UserID      string
	UserName    string
	ChannelID   string
	ChannelName string
}

// Refusal explains why a request was not carried out, and what would
// change that. It is shown to the requester only.
type Refusal struct {
	// Code is a stable snake_case reason for logs and metrics.
	Code string
	// Reason says what was refused and why.
	Reason string
	// Fix says what the user or an admin can do about it.
	Fix string
}

// Error implements error.
func (r *Refusal) Error() string { return "refused (" + r.Code + "): " + r.Reason }

// Refusal codes.
const (
	RefusedNotAllowed      = "not_allowed"
	RefusedCoachSupervisor = "coach_needs_supervisor"
	RefusedChannel         = "channel_not_allowed"
	RefusedStaleButton     = "stale_button"
)

// Environment variable names an admin changes to grant access; quoted in
// refusals so the fix is actionable.
const (
	EnvSupervisors = "MPC_SUPERVISORS"
	EnvAgents      = "MPC_AGENTS"
	EnvChannels    = "MPC_CHANNELS"
)

// GroupMembers returns the user ids in a Slack user group (S…), from a cache
// that may be stale but never blocks on a Slack outage for long.
type GroupMembers interface {
	GroupMembers(ctx context.Context, groupID string) (map[string]bool, error)
}

// PolicyConfig lists who may do what, by Slack id.
type PolicyConfig struct {
	// Supervisors and Agents hold user ids (U…/W…), user-group ids (S…)
	// or "*" for everyone.
	Supervisors []string
	Agents      []string
	// Channels, if not empty, is the list of channel ids (C…/G…/D…) where
	// /mpc may be used.
	Channels []string
	// Groups resolves user groups; required when a list holds an S… id.
	Groups GroupMembers
}

// Policy decides whether a requester may run a command. The zero value
// allows nobody (deny by default).
type Policy struct {
	supervisors, agents grantList
	channels            []string
	groups              GroupMembers
}

type grantList struct {
	everyone bool
	users    map[string]bool
	groups   []string
}

var (
	userIDPattern    = regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`)
	groupIDPattern   = regexp.MustCompile(`^S[A-Z0-9]{2,20}$`)
	channelIDPattern = regexp.MustCompile(`^[CGD][A-Z0-9]{2,20}$`)
)

// NewPolicy validates cfg. Every error names the variable and the bad entry.
func NewPolicy(cfg PolicyConfig) (*Policy, error) {
	p := &Policy{groups: cfg.Groups}
	var err error
	if p.supervisors, err = parseGrants(EnvSupervisors, cfg.Supervisors); err != nil {
		return nil, err
	}
	if p.agents, err = parseGrants(EnvAgents, cfg.Agents); err != nil {
		return nil, err
	}
	if (len(p.supervisors.groups) > 0 || len(p.agents.groups) > 0) && cfg.Groups == nil {
		return nil, fmt.Errorf("user groups are listed but no group resolver is configured")
	}
	for _, c := range cfg.Channels {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if !channelIDPattern.MatchString(c) {
			return nil, fmt.Errorf("%s: %q is not a Slack channel id (like C0123ABCD); use ids, not #names", EnvChannels, c)
		}
		p.channels = append(p.channels, c)
	}
	return p, nil
}

func parseGrants(env string, ids []string) (grantList, error) {
	g := grantList{users: map[string]bool{}}
	for _, id := range ids {
		id = strings.TrimSpace(id)
		switch {
		case id == "":
		case id == "*":
			g.everyone = true
		case userIDPattern.MatchString(id):
			g.users[id] = true
		case groupIDPattern.MatchString(id):
			g.groups = append(g.groups, id)
		default:
			return g, fmt.Errorf("%s: %q is not a Slack user id (U…/W…), user-group id (S…) or *; use ids, not names", env, id)
		}
	}
	return g, nil
}

// Empty reports whether nobody at all is allowed (no supervisors, no
// agents): the bot then refuses everything, and says so at start.
func (p *Policy) Empty() bool {
	return p == nil || (p.supervisors.empty() && p.agents.empty())
}

func (g grantList) empty() bool { return !g.everyone && len(g.users) == 0 && len(g.groups) == 0 }

// Groups returns every user-group id the policy refers to.
func (p *Policy) Groups() []string {
	var gs []string
	if p != nil {
		gs = append(gs, p.supervisors.groups...)
		gs = append(gs, p.agents.groups...)
	}
	sort.Strings(gs)
	return gs
}

// Channels returns the channel allowlist (empty: everywhere).
func (p *Policy) Channels() []string {
	if p == nil {
		return nil
	}
	return p.channels
}

// Role returns the requester's role. A user-group lookup failure is
// treated as "not a member" of that group and returned with the role, so
// the caller can log it; access is never granted on an error.
func (p *Policy) Role(ctx context.Context, userID string) (Role, error) {
	return p.roleFor(ctx, userID, Supervisor)
}

// roleFor finds out whether userID has at least the role need, and
// returns the role found. Direct ids (both lists) are checked first; user
// groups are looked up only when the answer depends on them, all at once,
// and the answer comes as soon as it is known: a member of an agents'
// group who may mute does not wait for a slow supervisors' group. When the
// user has less than need, the result tells an agent from a stranger (for
// the refusal's wording), which may wait for the agents' groups. A lookup
// error counts as "not a member" and is returned when nothing was granted.
func (p *Policy) roleFor(ctx context.Context, userID string, need Role) (Role, error) {
	if p == nil {
		return Stranger, nil
	}
	if p.supervisors.direct(userID) {
		return Supervisor, nil
	}
	found := Stranger
	if p.agents.direct(userID) {
		found = Agent
		if need <= Agent {
			return Agent, nil
		}
	}
	type ask struct {
		group string
		role  Role
	}
	var asks []ask
	for _, g := range p.supervisors.groups {
		asks = append(asks, ask{g, Supervisor})
	}
	if found < Agent {
		for _, g := range p.agents.groups {
			asks = append(asks, ask{g, Agent})
		}
	}
	if len(asks) == 0 {
		return found, nil
	}
	type answer struct {
		ask
		member bool
		err    error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // lookups whose answer is no longer needed stop waiting
	answers := make(chan answer, len(asks))
	for _, a := range asks {
		go func() {
			members, err := p.groups.GroupMembers(ctx, a.group)
			if err != nil {
				err = fmt.Errorf("user group %s: %w", a.group, err)
			}
			answers <- answer{ask: a, member: members[userID], err: err}
		}()
	}
	var firstErr error
	for range asks {
		a := <-answers
		switch {
		case a.err != nil:
			if firstErr == nil {
				firstErr = a.err
			}
		case !a.member:
		case a.role == Supervisor:
			return Supervisor, nil
		case need <= Agent:
			return Agent, nil
		default:
			found = Agent
		}
	}
	return found, firstErr
}

func (g grantList) direct(userID string) bool { return g.everyone || g.users[userID] }

// requiredRole returns the least role that may run cmd: nothing for Help,
// Supervisor for a change that coaches or uncoaches, Agent for everything
// else (lists, live calls, other changes, cancelling a timer — the timer's
// actions are checked when it is cancelled).
func requiredRole(cmd Command) Role {
	switch c := cmd.(type) {
	case Help:
		return Stranger
	case Change:
		if c.Coaching() {
			return Supervisor
		}
	}
	return Agent
}

// channelAllowed reports whether /mpc may be used in the channel. A
// request with no channel comes from the app's Home tab, a personal
// surface the allowlist does not restrict (roles still apply).
func (p *Policy) channelAllowed(channelID string) bool {
	if p == nil || len(p.channels) == 0 || channelID == "" {
		return true
	}
	for _, c := range p.channels {
		if c == channelID {
			return true
		}
	}
	return false
}

// Authorize decides whether r may run cmd. It returns nil when allowed, or
// a Refusal (and any user-group lookup error, for the log). Help is always
// allowed; see requiredRole for the rest. User groups are looked up only
// when the decision depends on them.
func (p *Policy) Authorize(ctx context.Context, r Requester, cmd Command) (*Refusal, error) {
	need := requiredRole(cmd)
	if need == Stranger {
		return nil, nil
	}
	if !p.channelAllowed(r.ChannelID) {
		return &Refusal{
			Code:   RefusedChannel,
			Reason: "/mpc can't be used in this channel.",
			Fix:    fmt.Sprintf("Use it in a channel listed in %s (%s), or ask an admin to add this channel (%s) to %s.", EnvChannels, channelList(p.channels), r.ChannelID, EnvChannels),
		}, nil
	}
	role, err := p.roleFor(ctx, r.UserID, need)
	switch {
	case role >= need:
		return nil, nil
	case role == Stranger:
		return &Refusal{
			Code:   RefusedNotAllowed,
			Reason: fmt.Sprintf("You (%s) are not allowed to use /mpc.", r.UserID),
			Fix:    fmt.Sprintf("Ask an admin to add your user id %s to %s (everything except coaching) or %s (everything).", r.UserID, EnvAgents, EnvSupervisors),
		}, err
	}
	return &Refusal{
		Code:   RefusedCoachSupervisor,
		Reason: fmt.Sprintf("Only supervisors may coach or uncoach; you (%s) are an agent.", r.UserID),
		Fix:    fmt.Sprintf("Ask a supervisor, or an admin to add your user id %s to %s.", r.UserID, EnvSupervisors),
	}, err
}

func channelList(ids []string) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = "`" + id + "`"
	}
	return strings.Join(parts, ", ")
}
