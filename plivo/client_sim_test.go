package plivo_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/plivo"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// newSimClient starts the Plivo simulator with the sample MPC and returns a
// client for it whose waits are instant (see InstantWaits).
func newSimClient(t *testing.T, opts ...plivotest.Option) (*plivo.Client, *plivotest.Server, func() []time.Duration) {
	t.Helper()
	srv := plivotest.NewServer(append([]plivotest.Option{plivotest.WithSampleMPC()}, opts...)...)
	t.Cleanup(srv.Close)
	c, err := plivo.New(plivo.Config{AuthID: srv.AuthID, AuthToken: srv.AuthToken, BaseURL: srv.URL, Rate: 1000, Burst: 1000})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, srv, plivo.InstantWaits(c)
}

func simCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func byName(t *testing.T, name string) plivo.MPC {
	t.Helper()
	m, err := plivo.MPCByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// memberWithRole finds a live member of the given role through the API.
func memberWithRole(t *testing.T, c *plivo.Client, mpc plivo.MPC, role string) plivo.Member {
	t.Helper()
	ps, err := c.ListParticipants(simCtx(t), mpc)
	if err != nil {
		t.Fatalf("ListParticipants: %v", err)
	}
	for _, p := range ps {
		if p.Live() && strings.EqualFold(p.Role, role) {
			m, err := plivo.ParseMember(p.MemberID)
			if err != nil {
				t.Fatalf("member id %q from the simulator: %v", p.MemberID, err)
			}
			return m
		}
	}
	t.Fatalf("no live %s in %s: %+v", role, mpc, ps)
	return ""
}

func TestSimUpdateAndReadBack(t *testing.T) {
	tests := []struct {
		name       string
		mpcName    string
		role       string
		update     plivo.ParticipantUpdate
		status     int // simulator's success status; 0 = default 200
		wantStatus int
	}{
		{"mute the agent", plivotest.SampleMPCName, plivotest.RoleAgent, plivo.ParticipantUpdate{Mute: ptr(true)}, 0, 200},
		{"hold the customer, 202", plivotest.SampleMPCName, plivotest.RoleCustomer, plivo.ParticipantUpdate{Hold: ptr(true)}, 202, 202},
		{"coach off and mute the supervisor", plivotest.SampleMPCName, plivotest.RoleSupervisor,
			plivo.ParticipantUpdate{Mute: ptr(true), CoachMode: ptr(false)}, 0, 200},
		{"name with a space and non-ASCII", "mpc 1000 Östermalm", plivotest.RoleAgent, plivo.ParticipantUpdate{Mute: ptr(true), Hold: ptr(true)}, 0, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv, _ := newSimClient(t)
			if tt.mpcName != plivotest.SampleMPCName {
				srv.AddParticipant(tt.mpcName, tt.role)
			}
			if tt.status != 0 {
				srv.SetUpdateStatus(tt.status)
			}
			mpc := byName(t, tt.mpcName)
			member := memberWithRole(t, c, mpc, tt.role)

			res, err := c.UpdateParticipant(simCtx(t), mpc, member, tt.update)
			if err != nil {
				t.Fatalf("UpdateParticipant: %v", err)
			}
			if res.Status != tt.wantStatus || res.APIID == "" {
				t.Errorf("result status %d api_id %q", res.Status, res.APIID)
			}
			if got, want := len(res.Results), len(tt.update.Fields()); got != want {
				t.Errorf("%d result strings, want %d: %v", got, want, res.Results)
			}
			for _, f := range tt.update.Fields() {
				if !strings.Contains(res.Results[f], tt.mpcName) {
					t.Errorf("result for %s = %q, want Plivo's string naming the MPC", f, res.Results[f])
				}
			}

			// Read back through the API and compare with the simulator's state.
			ps, err := c.ListParticipants(simCtx(t), mpc)
			if err != nil {
				t.Fatalf("ListParticipants: %v", err)
			}
			var found *plivo.Participant
			for i := range ps {
				if ps[i].MemberID == string(member) && ps[i].Live() {
					found = &ps[i]
				}
			}
			if found == nil {
				t.Fatalf("member %s not in the list %+v", member, ps)
			}
			for _, f := range tt.update.Fields() {
				want, _ := tt.update.Get(f)
				var got *bool
				switch f {
				case plivo.FieldMute:
					got = found.Mute
				case plivo.FieldHold:
					got = found.Hold
				case plivo.FieldCoachMode:
					got = found.CoachMode
				}
				if got == nil || *got != want {
					t.Errorf("listed %s = %v, want %v", f, got, want)
				}
			}
			state, ok := srv.Participant(tt.mpcName, string(member))
			if !ok {
				t.Fatal("simulator does not know the member")
			}
			if v, ok := tt.update.Get(plivo.FieldMute); ok && state.Mute != v {
				t.Errorf("simulator mute = %v, want %v", state.Mute, v)
			}
			if v, ok := tt.update.Get(plivo.FieldHold); ok && state.Hold != v {
				t.Errorf("simulator hold = %v, want %v", state.Hold, v)
			}
			if v, ok := tt.update.Get(plivo.FieldCoachMode); ok && state.CoachMode != v {
				t.Errorf("simulator coach_mode = %v, want %v", state.CoachMode, v)
			}
			got, err := c.GetParticipant(simCtx(t), mpc, member)
			if err != nil {
				t.Fatalf("GetParticipant: %v", err)
			}
			if !reflect.DeepEqual(got, *found) {
				t.Errorf("get = %+v\nlist = %+v", got, *found)
			}
			if c.Credentials() != plivo.CredentialsAccepted {
				t.Errorf("credentials %v", c.Credentials())
			}
		})
	}
}

func TestSimUpdateAllMembers(t *testing.T) {
	c, srv, _ := newSimClient(t)
	mpc := byName(t, plivotest.SampleMPCName)
	if _, err := c.UpdateParticipant(simCtx(t), mpc, plivo.AllMembers, plivo.ParticipantUpdate{Mute: ptr(true)}); err != nil {
		t.Fatalf("UpdateParticipant all: %v", err)
	}
	for _, p := range srv.Participants(plivotest.SampleMPCName) {
		if p.Live && !p.Mute {
			t.Errorf("member %s not muted", p.MemberID)
		}
	}
}

func TestSimNotFound(t *testing.T) {
	c, srv, _ := newSimClient(t)
	srv.AddParticipant("ending soon", plivotest.RoleAgent)
	srv.EndMPC("ending soon")
	left := srv.AddParticipant(plivotest.SampleMPCName, plivotest.RoleCustomer)
	srv.RemoveParticipant(plivotest.SampleMPCName, left)
	tests := []struct {
		name    string
		mpc     string
		member  plivo.Member
		wantMsg string
	}{
		{"unknown MPC", "no such mpc", "101", "no such mpc"},
		{"ended MPC by name", "ending soon", "1", "ending soon"},
		{"unknown member", plivotest.SampleMPCName, "999999", "999999"},
		{"member who left", plivotest.SampleMPCName, plivo.Member(left), left},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.RequestCount()
			_, err := c.UpdateParticipant(simCtx(t), byName(t, tt.mpc), tt.member, plivo.ParticipantUpdate{Mute: ptr(true)})
			e, ok := plivo.AsError(err)
			if !ok || e.Kind != plivo.NotFound {
				t.Fatalf("error %v, want NotFound", err)
			}
			if !strings.Contains(e.Message, tt.wantMsg) || e.Status != 404 || e.APIID == "" {
				t.Errorf("error %+v, want a 404 message naming %q with an api_id", e, tt.wantMsg)
			}
			if n := srv.RequestCount() - before; n != 1 {
				t.Errorf("%d requests, want exactly 1 (404 is not retried)", n)
			}
		})
	}
	t.Run("list of an unknown MPC", func(t *testing.T) {
		_, err := c.ListParticipants(simCtx(t), byName(t, "no such mpc"))
		if plivo.KindOf(err) != plivo.NotFound {
			t.Errorf("error %v, want NotFound", err)
		}
	})
	t.Run("get of an unknown member", func(t *testing.T) {
		_, err := c.GetParticipant(simCtx(t), byName(t, plivotest.SampleMPCName), "999999")
		if plivo.KindOf(err) != plivo.NotFound {
			t.Errorf("error %v, want NotFound", err)
		}
	})
	if len(srv.AppliedUpdates()) != 0 {
		t.Errorf("%d updates applied, want none", len(srv.AppliedUpdates()))
	}
}

func TestSimCoachOnAllRefusedLocally(t *testing.T) {
	c, srv, _ := newSimClient(t)
	_, err := c.UpdateParticipant(simCtx(t), byName(t, plivotest.SampleMPCName), plivo.AllMembers,
		plivo.ParticipantUpdate{CoachMode: ptr(true)})
	if plivo.KindOf(err) != plivo.Invalid {
		t.Fatalf("error %v, want Invalid", err)
	}
	if n := srv.RequestCount(); n != 0 {
		t.Errorf("%d requests reached the simulator, want 0", n)
	}
}

func TestSimRetryAfter429(t *testing.T) {
	c, srv, waits := newSimClient(t)
	mpc := byName(t, plivotest.SampleMPCName)
	member := memberWithRole(t, c, mpc, plivotest.RoleAgent)
	srv.ResetLog()
	srv.FailNext(1, plivotest.Fault{Status: 429, RetryAfter: "1"})

	res, err := c.UpdateParticipant(simCtx(t), mpc, member, plivo.ParticipantUpdate{Mute: ptr(true)})
	if err != nil {
		t.Fatalf("UpdateParticipant: %v", err)
	}
	if res.Results[plivo.FieldMute] == "" {
		t.Errorf("result %+v", res)
	}
	if got := waits(); !reflect.DeepEqual(got, []time.Duration{time.Second}) {
		t.Errorf("waits = %v, want [1s] (Retry-After)", got)
	}
	if n := srv.RequestCount(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	if n := len(srv.AppliedUpdates()); n != 1 {
		t.Errorf("%d applied updates, want exactly 1", n)
	}
	if st, _ := srv.Participant(plivotest.SampleMPCName, string(member)); !st.Mute {
		t.Error("member not muted")
	}
}

// An update whose answer is lost (5xx, timeout) may have been applied:
// the client reads the state back before resending, so Plivo never gets
// the same update twice — and resends when it was not applied.
func TestSimConfirmBeforeResend(t *testing.T) {
	tests := []struct {
		name          string
		member        string // role, or "all"
		update        plivo.ParticipantUpdate
		fault         plivotest.Fault
		thenFault     *plivotest.Fault // the next request after it (the read back)
		wantPosts     int
		wantApplied   int
		wantConfirmed bool
	}{
		{"503 after applying: confirmed, not resent", plivotest.RoleAgent, plivo.ParticipantUpdate{Hold: ptr(true)},
			plivotest.Fault{Status: 503, Apply: true}, nil, 1, 1, true},
		{"dropped after applying: confirmed, not resent", plivotest.RoleCustomer, plivo.ParticipantUpdate{Mute: ptr(true), Hold: ptr(true)},
			plivotest.Fault{Drop: true, Apply: true}, nil, 1, 1, true},
		{"all, 500 after applying: confirmed", "all", plivo.ParticipantUpdate{Mute: ptr(true)},
			plivotest.Fault{Status: 500, Apply: true}, nil, 1, 1, true},
		{"coach on an agent, 502 after applying: confirmed", plivotest.RoleAgent, plivo.ParticipantUpdate{CoachMode: ptr(true)},
			plivotest.Fault{Status: 502, Apply: true}, nil, 1, 1, true},
		{"the read back fails too: read again, never resent blind", plivotest.RoleAgent, plivo.ParticipantUpdate{Hold: ptr(true)},
			plivotest.Fault{Status: 503, Apply: true}, &plivotest.Fault{Status: 503}, 1, 1, true},
		{"503 before applying: read back, resent once", plivotest.RoleAgent, plivo.ParticipantUpdate{Hold: ptr(true)},
			plivotest.Fault{Status: 503}, nil, 2, 1, false},
		{"429: not applied, retried without reading back", plivotest.RoleAgent, plivo.ParticipantUpdate{Mute: ptr(true)},
			plivotest.Fault{Status: 429}, nil, 2, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv, _ := newSimClient(t)
			mpc := byName(t, plivotest.SampleMPCName)
			member := plivo.AllMembers
			if tt.member != "all" {
				member = memberWithRole(t, c, mpc, tt.member)
			}
			srv.ResetLog()
			srv.FailNext(1, tt.fault)
			if tt.thenFault != nil {
				srv.FailNext(1, *tt.thenFault)
			}
			res, err := c.UpdateParticipant(simCtx(t), mpc, member, tt.update)
			if err != nil {
				t.Fatalf("UpdateParticipant: %v", err)
			}
			if n := len(srv.AppliedUpdates()); n != tt.wantApplied {
				t.Errorf("%d applied updates, want %d", n, tt.wantApplied)
			}
			posts := 0
			for _, r := range srv.Requests() {
				if r.Op == plivotest.OpUpdateParticipant {
					posts++
				}
			}
			if posts != tt.wantPosts {
				t.Errorf("%d update requests, want %d", posts, tt.wantPosts)
			}
			if res.Confirmed != tt.wantConfirmed {
				t.Errorf("Confirmed = %v, want %v (%+v)", res.Confirmed, tt.wantConfirmed, res)
			}
			for _, f := range tt.update.Fields() {
				if res.Results[f] == "" {
					t.Errorf("no result for %s: %+v", f, res)
				}
			}
		})
	}
}

func TestSimAccountLimit(t *testing.T) {
	c, srv, _ := newSimClient(t, plivotest.WithAccountLimit(2, time.Minute))
	mpc := byName(t, plivotest.SampleMPCName)
	for i := range 2 {
		if _, err := c.UpdateParticipant(simCtx(t), mpc, "101", plivo.ParticipantUpdate{Mute: ptr(i == 0)}); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	_, err := c.UpdateParticipant(simCtx(t), mpc, "101", plivo.ParticipantUpdate{Mute: ptr(true)})
	e, ok := plivo.AsError(err)
	if !ok || e.Kind != plivo.RateLimited || e.Status != 429 || e.RetryAfter <= 0 || e.Attempts < 2 {
		t.Fatalf("error %+v, want RateLimited after retries with a RetryAfter", e)
	}
	if n := len(srv.AppliedUpdates()); n != 2 {
		t.Errorf("%d applied updates, want 2", n)
	}
}

func TestSimWrongCredentials(t *testing.T) {
	srv := plivotest.NewServer(plivotest.WithSampleMPC())
	t.Cleanup(srv.Close)
	const wrong = "not-the-right-token-0123456789"
	c, err := plivo.New(plivo.Config{AuthID: srv.AuthID, AuthToken: wrong, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.UpdateParticipant(simCtx(t), byName(t, plivotest.SampleMPCName), "101", plivo.ParticipantUpdate{Mute: ptr(true)})
	if plivo.KindOf(err) != plivo.Unauthorized {
		t.Fatalf("error %v, want Unauthorized", err)
	}
	if strings.Contains(err.Error(), wrong) {
		t.Errorf("error contains the token: %v", err)
	}
	if c.Credentials() != plivo.CredentialsRejected {
		t.Errorf("credentials %v, want rejected", c.Credentials())
	}
	if srv.RequestCount() != 1 {
		t.Errorf("%d requests, want 1", srv.RequestCount())
	}
}

func ptr[T any](v T) *T { return &v }

// The read-back step's edges: a definite answer to the read (404) resends
// at once; reads that keep failing never lead to a blind resend.
func TestSimReadBackEdges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		member   string
		faults   []plivotest.Fault
		ctxLimit time.Duration
		wantOps  []string // the first requests, in order
		wantPost int
		wantKind plivo.Kind // 0 (Other): success
		wantMsg  string
	}{
		{"the read finds nothing (404): resent for Plivo's own answer", "102",
			[]plivotest.Fault{{Status: 503}, {Status: 404}}, 10 * time.Second,
			[]string{plivotest.OpUpdateParticipant, plivotest.OpGetParticipant, plivotest.OpUpdateParticipant}, 2, plivo.Other, ""},
		{"all: the list is not found: resent", "all",
			[]plivotest.Fault{{Status: 500}, {Status: 404}}, 10 * time.Second,
			[]string{plivotest.OpUpdateParticipant, plivotest.OpListParticipants, plivotest.OpUpdateParticipant}, 2, plivo.Other, ""},
		{"reads fail until the deadline: never resent", "102",
			append([]plivotest.Fault{{Status: 503, Apply: true}}, repeat(plivotest.Fault{Status: 502}, 50)...), 3 * time.Second,
			[]string{plivotest.OpUpdateParticipant, plivotest.OpGetParticipant, plivotest.OpGetParticipant}, 1, plivo.Unavailable,
			"reading the state back to check failed too"},
		{"no time left to read: the lost answer's error", "102",
			[]plivotest.Fault{{Status: 503, RetryAfter: "30"}}, 3 * time.Second,
			[]string{plivotest.OpUpdateParticipant}, 1, plivo.Unavailable, "service unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, srv, _ := newSimClient(t)
			for _, f := range tt.faults {
				srv.FailNext(1, f)
			}
			ctx, cancel := context.WithTimeout(context.Background(), tt.ctxLimit)
			defer cancel()
			member := plivo.Member(tt.member)
			_, err := c.UpdateParticipant(ctx, byName(t, plivotest.SampleMPCName), member, plivo.ParticipantUpdate{Mute: ptr(true)})
			if tt.wantKind == plivo.Other && err != nil {
				t.Fatalf("UpdateParticipant: %v", err)
			}
			if tt.wantKind != plivo.Other {
				e, ok := plivo.AsError(err)
				if !ok || e.Kind != tt.wantKind || !strings.Contains(e.Message, tt.wantMsg) {
					t.Fatalf("error %v, want %v containing %q", err, tt.wantKind, tt.wantMsg)
				}
			}
			var ops []string
			posts := 0
			for _, r := range srv.Requests() {
				ops = append(ops, r.Op)
				if r.Op == plivotest.OpUpdateParticipant {
					posts++
				}
			}
			if len(ops) < len(tt.wantOps) || !reflect.DeepEqual(ops[:len(tt.wantOps)], tt.wantOps) {
				t.Errorf("requests %v, want them to start with %v", ops, tt.wantOps)
			}
			if posts != tt.wantPost {
				t.Errorf("%d updates sent, want %d", posts, tt.wantPost)
			}
		})
	}
}

func repeat[T any](v T, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// The live calls of the demo set-up, through the simulator's List MPC.
func TestSimLiveMPCs(t *testing.T) {
	t.Parallel()
	c, srv, _ := newSimClient(t, plivotest.WithSampleCalls())
	got, err := c.LiveMPCs(simCtx(t))
	if err != nil {
		t.Fatalf("LiveMPCs: %v", err)
	}
	var names []string
	for _, m := range got.MPCs {
		names = append(names, fmt.Sprintf("%s (%s)", m.Name, m.Status))
		info, ok := srv.MPC(m.Name)
		if !ok || info.UUID != m.UUID {
			t.Errorf("%s: uuid %s, simulator %+v", m.Name, m.UUID, info)
		}
		if m.Created.IsZero() || (m.Status == plivo.MPCActive) == m.Started.IsZero() {
			t.Errorf("%s: created %v started %v", m.Name, m.Created, m.Started)
		}
	}
	want := []string{"test_mpc_1 (active)", "billing-escalation (active)", "mpc 1000 (active)", "onboarding-queue (initialized)"}
	if !reflect.DeepEqual(names, want) || got.Truncated || got.Skipped != 0 {
		t.Errorf("live MPCs %q (truncated %v, skipped %d), want %q", names, got.Truncated, got.Skipped, want)
	}
	if n := srv.RequestCount(); n != 2 {
		t.Errorf("%d requests, want 2 (one per status, no participants fetched)", n)
	}
	// An initialized call that starts shows up as active.
	srv.AddParticipant("onboarding-queue", plivotest.RoleAgent)
	got, err = c.LiveMPCs(simCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range got.MPCs {
		if m.Status != plivo.MPCActive {
			t.Errorf("%s is %s after an agent joined, want active", m.Name, m.Status)
		}
	}
}

// Many live calls: every page through the limiter, each call once.
func TestSimLiveMPCsPages(t *testing.T) {
	t.Parallel()
	srv := plivotest.NewServer()
	t.Cleanup(srv.Close)
	for i := range 45 {
		srv.AddParticipant(fmt.Sprintf("call %02d", i), plivotest.RoleAgent)
	}
	for i := range 3 {
		srv.AddWaitingParticipant(fmt.Sprintf("queue %d", i), plivotest.RoleCustomer)
	}
	srv.EndMPC("call 00")
	limiter := newCountingLimiter(t)
	c, err := plivo.New(plivo.Config{AuthID: srv.AuthID, AuthToken: srv.AuthToken, BaseURL: srv.URL, Limiter: limiter})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.LiveMPCs(simCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	active := 0
	for _, m := range got.MPCs {
		if seen[m.UUID] {
			t.Errorf("%s listed twice", m.Name)
		}
		seen[m.UUID] = true
		if m.Status == plivo.MPCActive {
			active++
		}
	}
	if len(got.MPCs) != 47 || active != 44 || got.Truncated {
		t.Errorf("%d MPCs (%d active, truncated %v), want 47 (44 active)", len(got.MPCs), active, got.Truncated)
	}
	// 1 page of initialized, 3 of active.
	if n := srv.RequestCount(); n != 4 || limiter.Reserves() != n {
		t.Errorf("%d requests, %d reservations; want 4 each", n, limiter.Reserves())
	}
}
