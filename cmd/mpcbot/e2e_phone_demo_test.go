package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The demo console shows the phone-first features on the same path as
// Slack: `/mpc` and `/mpc calls` list the simulator's live calls, and a
// timed hold is applied, offers Undo now and Cancel timer as commands, and
// is put back before the demo exits at the end of piped input.
func TestDemoPhoneFeatures(t *testing.T) {
	t.Parallel()
	input := "/mpc\n/mpc calls\n/mpc hold test_mpc_1 101 for 1s\n"
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, []string{"demo"}, map[string]string{}, strings.NewReader(input), &stdout, &stderr)
	out := stdout.String()
	if code != exitOK {
		t.Fatalf("demo exited %d; stderr:\n%s\nstdout:\n%s", code, stderr.String(), out)
	}

	calls := regexp.MustCompile(`(?m)^Live calls \(4\):\n  test_mpc_1 +[0-9a-f]{8}  just started\n  billing-escalation +[0-9a-f]{8}  running 3m\n` +
		`  mpc 1000 +[0-9a-f]{8}  running 11m\n  onboarding-queue +[0-9a-f]{8}  waiting to start\n/mpc list <name> shows who is on a call`)
	for _, cmd := range []string{"> /mpc\n", "> /mpc calls\n"} {
		_, after, ok := strings.Cut(out, cmd)
		if !ok || !calls.MatchString(after) || calls.FindStringIndex(after)[0] != 0 {
			t.Errorf("%q is not answered with the live calls:\n%s", strings.TrimSpace(cmd), out)
		}
	}
	if strings.Contains(out, "morning-huddle") {
		t.Errorf("the demo lists an ended call:\n%s", out)
	}

	timed := regexp.MustCompile(`> /mpc hold test_mpc_1 101 for 1s\n` +
		`✅ hold member 101 in test_mpc_1 for 1s\n` +
		`  ✅ hold: MPC: test_mpc_1 hold/unhold member\(s\) succeeded\n` +
		`  api_id: [0-9a-f-]{36}\n` +
		`  ⏱ unhold member 101 in test_mpc_1 at [0-9:]{8} UTC \(in 1s\), unless someone changes it first\.\n` +
		`  Undo now: unhold 101: /mpc unhold test_mpc_1 101\n` +
		`  Cancel timer: /mpc cancel-timer [a-z0-9]{16}\n`)
	revert := regexp.MustCompile(`\(waiting for 1 timer\(s\) to put things back…\)\n` +
		`⏱ after 1s: ✅ unhold member 101 in test_mpc_1\n` +
		`  ✅ unhold: MPC: test_mpc_1 hold/unhold member\(s\) succeeded\n` +
		`  api_id: [0-9a-f-]{36}\n`)
	t1, t2 := timed.FindStringIndex(out), revert.FindStringIndex(out)
	switch {
	case t1 == nil:
		t.Fatalf("the timed hold's answer is missing:\n%s", out)
	case t2 == nil:
		t.Fatalf("the demo did not wait for the revert:\n%s", out)
	case t2[0] < t1[1]:
		t.Fatalf("the revert came before the timed hold's answer:\n%s", out)
	}
	if stderr.String() != "" {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}
