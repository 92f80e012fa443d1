package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/mpcbot/mpcbot/commands"
)

// terminal is the commands.Surface of the demo console and `mpcbot exec`:
// the same path as Slack, answered as text. Timer reverts print here too.
type terminal struct {
	mu  sync.Mutex
	out io.Writer
	// errOut receives outcomes that are not a success (exec prints them on
	// stderr); nil means out.
	errOut io.Writer
	// steps prints the follow-ups as commands to type.
	steps bool
}

// Begin implements commands.Surface.
func (*terminal) Begin(context.Context, commands.Outcome) {}

// Answer implements commands.Surface.
func (t *terminal) Answer(_ context.Context, o commands.Outcome) commands.Place {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.out
	if t.errOut != nil && o.Status() != commands.StatusOK && o.Status() != commands.StatusSkipped {
		w = t.errOut
	}
	fmt.Fprint(w, commands.RenderText(o))
	if t.steps {
		fmt.Fprint(w, nextSteps(o))
	}
	if o.Reverts != nil || t.steps {
		fmt.Fprintln(w)
	}
	return commands.Place{}
}

// print writes text under the surface's lock, so that a timer's revert
// never cuts into another answer.
func (t *terminal) print(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, format, args...)
}

// nextSteps prints, as commands to type, what the Slack reply offers as
// buttons.
func nextSteps(o commands.Outcome) string {
	switch o.Status() {
	case commands.StatusConfirm:
		c := o.Change
		c.Confirmed = true
		return fmt.Sprintf("  To go ahead: /mpc %s\n", c.Text())
	}
	s := ""
	for _, f := range o.FollowUps {
		switch f.Command.(type) {
		case commands.Change, commands.CancelTimer:
			s += fmt.Sprintf("  %s: /mpc %s\n", f.Label, f.Command.Text())
		}
	}
	return s
}

// waitForTimers runs due timers until none is pending (or ctx ends), so a
// piped demo or an exec of a timed change shows the revert before exiting.
func waitForTimers(ctx context.Context, svc *commands.Service, surface commands.Surface) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		svc.RunDueTimers(ctx, func(commands.Timer) commands.Surface { return surface })
		pending, err := svc.Timers.Pending(ctx)
		if err != nil {
			return fmt.Errorf("list pending timers: %w", err)
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
