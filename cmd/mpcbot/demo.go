package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// demoUser is who types in the demo console: a supervisor, so every
// command works.
const demoUser = "UDEMO"

// runDemo runs the /mpc pipeline (grammar, policy, rate-limited Plivo
// client with retries, outcome rendering) against the built-in Plivo
// simulator, reading commands from stdin. It needs no credentials.
func runDemo(ctx context.Context, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := loadConfig(env, 0)
	if err != nil {
		fmt.Fprintf(stderr, "mpcbot demo: configuration:\n%s\n", indent(err.Error()))
		return exitUsage
	}
	sim, err := plivotest.Start(plivotest.WithSampleCalls(), plivotest.WithLogLimit(1000))
	if err != nil {
		fmt.Fprintf(stderr, "mpcbot demo: starting the Plivo simulator: %v\n", err)
		return exitFailed
	}
	defer sim.Close()
	logger := newLogger(stderr, "warn", "text", nil)
	pc, err := plivo.New(plivo.Config{AuthID: sim.AuthID, AuthToken: sim.AuthToken, BaseURL: sim.URL, Logger: logger})
	if err != nil {
		fmt.Fprintf(stderr, "mpcbot demo: %v\n", err)
		return exitFailed
	}
	policy, err := commands.NewPolicy(commands.PolicyConfig{Supervisors: []string{demoUser}})
	if err != nil {
		fmt.Fprintf(stderr, "mpcbot demo: %v\n", err)
		return exitFailed
	}
	svc := &commands.Service{Plivo: pc, Policy: policy, ConfirmAllAbove: cfg.ConfirmAllAbove, Timeout: cfg.CommandTimeout, Logger: logger,
		Timers: commands.NewLocalTimers()}
	d := demo{svc: svc, grammar: cfg.grammar(), term: &terminal{out: stdout, steps: true},
		requester: commands.Requester{UserID: demoUser, UserName: "demo", ChannelID: "CDEMO"}}
	// Timed changes are put back by the same timers as in Slack; their
	// reverts print in the console.
	timersCtx, stopTimers := context.WithCancel(ctx)
	defer stopTimers()
	go svc.RunTimers(timersCtx, func(commands.Timer) commands.Surface { return d.term })

	interactive := isTerminal(stdin)
	if interactive {
		fmt.Fprintln(stdout, "mpcbot demo — a simulated Plivo account with a few live calls.")
		d.serve(ctx, "calls")
		fmt.Fprintln(stdout, "Type /mpc commands as in Slack (try `/mpc help`, `/mpc list test_mpc_1`, `/mpc hold test_mpc_1 101 for 10s`); Ctrl-D quits.")
	}
	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		readErr <- sc.Err()
		close(lines)
	}()
	for {
		if interactive {
			fmt.Fprint(stdout, "> ")
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(stdout)
			return exitOK
		case line, ok := <-lines:
			if !ok {
				if err := <-readErr; err != nil {
					fmt.Fprintf(stderr, "mpcbot demo: reading input: %v\n", err)
					return exitFailed
				}
				if interactive {
					fmt.Fprintln(stdout)
				}
				// Show what the timers put back before leaving.
				if pending, _ := svc.Timers.Pending(ctx); len(pending) > 0 {
					d.term.print("(waiting for %d timer(s) to put things back…)\n", len(pending))
					if err := waitForTimers(ctx, svc, d.term); err != nil {
						svc.AbandonTimers(context.WithoutCancel(ctx), "the demo stopped")
					}
				}
				return exitOK
			}
			text, ok := demoCommand(line)
			if !ok {
				continue
			}
			if !interactive {
				fmt.Fprintln(stdout, strings.TrimSpace("> /mpc "+text))
			}
			d.serve(ctx, text)
		}
	}
}

// demoCommand extracts the command text from a console line: "/mpc hold
// x all" and "hold x all" both work; blank lines and comments are skipped.
func demoCommand(line string) (string, bool) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return "", false
	}
	if rest, ok := strings.CutPrefix(line, "/mpc"); ok && (rest == "" || rest[0] == ' ') {
		line = strings.TrimSpace(rest)
	}
	return line, true
}

type demo struct {
	svc       *commands.Service
	grammar   commands.Grammar
	term      *terminal
	requester commands.Requester
}

// serve runs one command and prints what Slack would show, as text: the
// same grammar, policy and path as the bot.
func (d demo) serve(ctx context.Context, text string) {
	cmd, err := d.grammar.Parse(text)
	if err != nil {
		d.term.print("❌ %s\n%s\n\n", commands.Problem(err), commands.Usage)
		return
	}
	switch c := cmd.(type) {
	case commands.Help:
		d.term.print("%s\n\n", commands.HelpText)
	case commands.Calls:
		if ref, _ := d.svc.Authorize(ctx, d.requester, c); ref != nil {
			d.term.print("⛔ %s\n%s\n\n", ref.Reason, ref.Fix)
			return
		}
		l, err := d.svc.LiveCalls(ctx)
		if err != nil {
			d.term.print("%s\n\n", strings.Join(commands.Explain(err, plivo.MPC{}).Lines(), "\n"))
			return
		}
		d.term.print("%s\n", commands.RenderCallsText(l, time.Now()))
	case commands.List:
		if ref, _ := d.svc.Authorize(ctx, d.requester, c); ref != nil {
			d.term.print("⛔ %s\n%s\n\n", ref.Reason, ref.Fix)
			return
		}
		ro, err := d.svc.Roster(ctx, c.MPC)
		if err != nil {
			d.term.print("%s\n\n", strings.Join(commands.Explain(err, c.MPC).Lines(), "\n"))
			return
		}
		d.term.print("%s\n", commands.RenderRosterText(ro))
	case commands.CancelTimer:
		res := d.svc.CancelTimer(ctx, d.requester, c.ID)
		switch {
		case res.Refusal != nil:
			d.term.print("⛔ %s\n%s\n\n", res.Refusal.Reason, res.Refusal.Fix)
		case res.Timer == nil:
			d.term.print("ℹ️ That timer is no longer pending.\n\n")
		default:
			d.term.print("⏱ Timer cancelled: %s stays as it is.\n\n", res.Timer.Change.Describe())
		}
	case commands.Change:
		d.svc.Do(ctx, commands.Request{Requester: d.requester, Source: commands.CLI, Change: c}, d.term)
	}
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
