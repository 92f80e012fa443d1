package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

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
	sim, err := plivotest.Start(plivotest.WithSampleMPC(), plivotest.WithLogLimit(1000))
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
	svc := &commands.Service{Plivo: pc, Policy: policy, ConfirmAllAbove: cfg.ConfirmAllAbove, Timeout: cfg.CommandTimeout}
	d := demo{svc: svc, out: stdout, requester: commands.Requester{UserID: demoUser, UserName: "demo", ChannelID: "CDEMO"}}

	interactive := isTerminal(stdin)
	if interactive {
		fmt.Fprintf(stdout, "mpcbot demo — a simulated Plivo account with a live call %q.\n", plivotest.SampleMPCName)
		if mpc, err := plivo.MPCByName(plivotest.SampleMPCName); err == nil {
			if ro, err := svc.Roster(ctx, mpc); err == nil {
				fmt.Fprint(stdout, commands.RenderRosterText(ro))
			}
		}
		fmt.Fprintln(stdout, "Type /mpc commands as in Slack (try `/mpc help`, `/mpc hold test_mpc_1 all`); Ctrl-D quits.")
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
				return exitOK
			}
			text, ok := demoCommand(line)
			if !ok {
				continue
			}
			if !interactive {
				fmt.Fprintf(stdout, "> /mpc %s\n", text)
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
	out       io.Writer
	requester commands.Requester
}

// serve runs one command and prints what Slack would show, as text.
func (d demo) serve(ctx context.Context, text string) {
	cmd, err := commands.Parse(text)
	if err != nil {
		fmt.Fprintf(d.out, "❌ %s\n%s\n\n", commands.Problem(err), commands.Usage)
		return
	}
	switch c := cmd.(type) {
	case commands.Help:
		fmt.Fprintf(d.out, "%s\n\n", commands.HelpText)
	case commands.List:
		if ref, _ := d.svc.Authorize(ctx, d.requester, c); ref != nil {
			fmt.Fprintf(d.out, "⛔ %s\n%s\n\n", ref.Reason, ref.Fix)
			return
		}
		ro, err := d.svc.Roster(ctx, c.MPC)
		if err != nil {
			ex := commands.Explain(err, c.MPC)
			fmt.Fprintf(d.out, "❌ %s: %s\n→ %s\n\n", ex.Summary, ex.Detail, ex.Next)
			return
		}
		fmt.Fprintf(d.out, "%s\n", commands.RenderRosterText(ro))
	case commands.Change:
		o := d.svc.Change(ctx, d.requester, c, commands.CLI)
		fmt.Fprint(d.out, commands.RenderText(o))
		fmt.Fprint(d.out, nextSteps(o))
		fmt.Fprintln(d.out)
	}
}

// nextSteps prints, as commands to type, what the Slack reply offers as
// buttons.
func nextSteps(o commands.Outcome) string {
	switch o.Status() {
	case commands.StatusConfirm:
		c := o.Change
		c.Confirmed = true
		return fmt.Sprintf("  To go ahead: /mpc %s\n", c.Text())
	case commands.StatusOK, commands.StatusPartial:
		return fmt.Sprintf("  Undo: /mpc %s\n", o.Change.Inverse().Text())
	}
	return ""
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
