package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// execEnv is the environment of `mpcbot exec` against a simulator.
func execEnv(sim *plivotest.Server, kv ...string) map[string]string {
	env := map[string]string{
		"PLIVO_AUTH_ID": sim.AuthID, "PLIVO_AUTH_TOKEN": sim.AuthToken, "PLIVO_API_URL": sim.URL,
		"PLIVO_TIMEOUT": "2s", "MPC_COMMAND_TIMEOUT": "10s",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<unset>" {
			delete(env, kv[i])
			continue
		}
		env[kv[i]] = kv[i+1]
	}
	return env
}

// execRun runs `mpcbot exec args…` and returns its exit code and output.
func execRun(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code = run(ctx, append([]string{"exec"}, args...), env, strings.NewReader(""), &out, &errOut)
	if s := errOut.String() + out.String(); strings.Contains(s, plivotest.DefaultAuthToken) {
		t.Fatalf("the output shows PLIVO_AUTH_TOKEN:\n%s", s)
	}
	return code, out.String(), errOut.String()
}

func TestExec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		env        []string
		setup      func(sim *plivotest.Server)
		wantCode   int
		wantStdout []string
		wantStderr []string
		// wantApplied is the number of updates Plivo applied.
		wantApplied int
		check       func(t *testing.T, sim *plivotest.Server)
	}{
		{
			name: "one member, two fields", args: []string{"mute,hold", "test_mpc_1", "101"},
			wantCode: exitOK, wantApplied: 1,
			wantStdout: []string{
				"✅ mute: MPC: test_mpc_1 mute/unmute member(s) succeeded",
				"✅ hold: MPC: test_mpc_1 hold/unhold member(s) succeeded",
				"api_id",
			},
			check: func(t *testing.T, sim *plivotest.Server) {
				if st, _ := sim.Participant(plivotest.SampleMPCName, "101"); !st.Mute || !st.Hold {
					t.Errorf("member 101 state %+v", st)
				}
			},
		},
		{
			name: "as one quoted argument with /mpc", args: []string{"/mpc unmute test_mpc_1 102"},
			wantCode: exitOK, wantApplied: 1,
			wantStdout: []string{"✅ unmute: MPC: test_mpc_1 mute/unmute member(s) succeeded"},
		},
		{
			name: "help", args: []string{"help"}, wantCode: exitOK,
			wantStdout: []string{"/mpc list"},
		},
		{
			name: "list", args: []string{"list", "test_mpc_1"}, wantCode: exitOK,
			wantStdout: []string{"101", "102", "103"},
		},
		{
			name: "unknown member: Plivo 404", args: []string{"mute", "test_mpc_1", "999"},
			wantCode: exitFailed, wantApplied: 0,
			wantStderr: []string{"❌ mute", "999", "HTTP 404"},
		},
		{
			name: "unknown MPC on list", args: []string{"list", "no_such_call"},
			wantCode: exitFailed, wantStderr: []string{"❌ not found", "HTTP 404"},
		},
		{
			name: "usage error: misspelt action", args: []string{"mtue", "test_mpc_1", "101"},
			wantCode: exitUsage, wantStderr: []string{"Did you mean `mute`?", "Usage:"},
		},
		{
			name: "usage error: nothing to run", args: nil,
			wantCode: exitUsage, wantStderr: []string{"give a /mpc command", "Usage:"},
		},
		{
			name: "missing PLIVO_AUTH_ID", args: []string{"mute", "test_mpc_1", "101"}, env: []string{"PLIVO_AUTH_ID", "<unset>"},
			wantCode: exitUsage, wantStderr: []string{"PLIVO_AUTH_ID is not set"},
		},
		{
			name: "bad PLIVO_RATE", args: []string{"mute", "test_mpc_1", "101"}, env: []string{"PLIVO_RATE", "fast"},
			wantCode: exitUsage, wantStderr: []string{"PLIVO_RATE"},
		},
		{
			name: "all above MPC_CONFIRM_ALL_ABOVE needs --yes", args: []string{"hold", "test_mpc_1", "all"},
			env: []string{"MPC_CONFIRM_ALL_ABOVE", "2"}, wantCode: exitRefused, wantApplied: 0,
			wantStderr: []string{"3", "mpcbot exec hold test_mpc_1 all --yes"},
			check: func(t *testing.T, sim *plivotest.Server) {
				for _, p := range sim.Participants(plivotest.SampleMPCName) {
					if p.Hold {
						t.Errorf("member %s put on hold without --yes", p.MemberID)
					}
				}
			},
		},
		{
			name: "all with --yes", args: []string{"hold", "test_mpc_1", "all", "--yes"},
			env: []string{"MPC_CONFIRM_ALL_ABOVE", "2"}, wantCode: exitOK, wantApplied: 1,
			wantStdout: []string{"✅ hold: MPC: test_mpc_1 hold/unhold member(s) succeeded"},
			check: func(t *testing.T, sim *plivotest.Server) {
				for _, p := range sim.Participants(plivotest.SampleMPCName) {
					if !p.Hold {
						t.Errorf("member %s not on hold", p.MemberID)
					}
				}
			},
		},
		{
			name: "retried after a 429 with Retry-After", args: []string{"mute", "test_mpc_1", "103"},
			setup:    func(sim *plivotest.Server) { sim.FailNext(1, plivotest.Fault{Status: 429, RetryAfter: "1"}) },
			wantCode: exitOK, wantApplied: 1,
			wantStdout: []string{"✅ mute"},
			check: func(t *testing.T, sim *plivotest.Server) {
				reqs := sim.Requests()
				if len(reqs) != 2 || reqs[0].Status != 429 || reqs[1].Status != 200 {
					t.Fatalf("requests %+v, want a 429 then a 200", reqs)
				}
				if gap := reqs[1].Time.Sub(reqs[0].Time); gap < 900*time.Millisecond {
					t.Errorf("retried %v after a 429 with Retry-After: 1", gap)
				}
			},
		},
		{
			name: "retries exhausted: 503 until the deadline", args: []string{"mute", "test_mpc_1", "103"},
			env:      []string{"MPC_COMMAND_TIMEOUT", "2s"},
			setup:    func(sim *plivotest.Server) { sim.FailNext(100, plivotest.Fault{Status: 503}) },
			wantCode: exitFailed, wantApplied: 0,
			wantStderr: []string{"❌ mute", "HTTP 503", "reading the state back to check failed too", "may or may not have been applied"},
		},
		{
			name: "rate limited by PLIVO_RATE", args: []string{"mute", "test_mpc_1", "101,102,103"},
			env:      []string{"PLIVO_RATE", "2", "PLIVO_BURST", "1"},
			wantCode: exitOK, wantApplied: 3,
			check: func(t *testing.T, sim *plivotest.Server) {
				reqs := sim.Requests()
				if len(reqs) != 3 {
					t.Fatalf("%d requests, want 3", len(reqs))
				}
				// Burst 1 at 2/s: the third request cannot start before 1 s.
				if spread := reqs[2].Time.Sub(reqs[0].Time); spread < 900*time.Millisecond {
					t.Errorf("3 requests within %v at PLIVO_RATE=2, PLIVO_BURST=1", spread)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim := plivotest.NewServer(plivotest.WithSampleMPC())
			defer sim.Close()
			if tt.setup != nil {
				tt.setup(sim)
			}
			code, stdout, stderr := execRun(t, execEnv(sim, tt.env...), tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if n := len(sim.AppliedUpdates()); n != tt.wantApplied {
				t.Errorf("%d updates applied, want %d", n, tt.wantApplied)
			}
			if tt.check != nil {
				tt.check(t, sim)
			}
		})
	}
}
