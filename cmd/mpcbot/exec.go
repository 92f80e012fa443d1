package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo"
)

// runExec runs one /mpc command against Plivo from a terminal: the same
// grammar, rate limiter and retries as the bot, authorization skipped (the
// operator holds the Plivo credentials anyway). For scripts and for acting
// while Slack is down. Exit code 0 when everything succeeded, 1 when a
// Plivo call failed, 2 on a usage or configuration error, 3 when a change
// to all members of a large call needs --yes.
func runExec(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	text := strings.TrimSpace(strings.Join(args, " "))
	text = strings.TrimSpace(strings.TrimPrefix(text, "/mpc"))
	if text == "" {
		fmt.Fprintf(stderr, "mpcbot exec: give a /mpc command, e.g. mpcbot exec hold test_mpc_1 all\n\n%s\n", commands.Usage)
		return exitUsage
	}
	grammar := commands.Grammar{}
	if cfg, err := loadConfig(env, 0); err == nil {
		grammar = cfg.grammar()
	}
	cmd, err := grammar.Parse(text)
	if err != nil {
		fmt.Fprintf(stderr, "mpcbot exec: %s\n\n%s\n", commands.Problem(err), commands.Usage)
		return exitUsage
	}
	if _, ok := cmd.(commands.Help); ok {
		fmt.Fprintln(stdout, commands.HelpText)
		return exitOK
	}
	cfg, err := loadConfig(env, needPlivo)
	if err != nil {
		fmt.Fprintf(stderr, "mpcbot exec: configuration:\n%s\n", indent(redactor(cfg.secrets()).Replace(err.Error())))
		return exitUsage
	}
	logger := newLogger(stderr, cfg.LogLevel, "text", cfg.secrets())
	pc, err := plivo.New(plivo.Config{
		AuthID: cfg.PlivoAuthID, AuthToken: cfg.PlivoAuthToken, BaseURL: cfg.PlivoAPIURL,
		Rate: rate.Limit(cfg.PlivoRate), Burst: cfg.PlivoBurst, Timeout: cfg.PlivoTimeout, Logger: logger,
	})
	if err != nil {
		fmt.Fprintf(stderr, "mpcbot exec: PLIVO_* configuration: %v\n", err)
		return exitUsage
	}
	svc := &commands.Service{Plivo: pc, ConfirmAllAbove: cfg.ConfirmAllAbove, Timeout: cfg.CommandTimeout, Logger: logger,
		Timers: commands.NewLocalTimers()}
	requester := commands.Requester{UserID: "cli", UserName: "mpcbot exec"}
	failed := func(err error, mpc plivo.MPC) int {
		fmt.Fprintln(stderr, strings.Join(commands.Explain(err, mpc).Lines(), "\n"))
		return exitFailed
	}

	switch c := cmd.(type) {
	case commands.Calls:
		l, err := svc.LiveCalls(ctx)
		if err != nil {
			return failed(err, plivo.MPC{})
		}
		fmt.Fprint(stdout, commands.RenderCallsText(l, time.Now()))
		return exitOK
	case commands.List:
		ro, err := svc.Roster(ctx, c.MPC)
		if err != nil {
			return failed(err, c.MPC)
		}
		fmt.Fprint(stdout, commands.RenderRosterText(ro))
		return exitOK
	case commands.CancelTimer:
		fmt.Fprintf(stderr, "mpcbot exec: timers live in the running bot (or in the exec that set them); there is no timer %s here\n", c.ID)
		return exitUsage
	case commands.Change:
		term := &terminal{out: stdout, errOut: stderr}
		o := svc.Do(ctx, commands.Request{Requester: requester, Source: commands.CLI, Change: c}, term)
		logger.Info("audit", attrsToAny(o)...)
		code := exitCode(o)
		if o.Status() == commands.StatusConfirm {
			c.Confirmed = true
			fmt.Fprintf(stderr, "  To go ahead: mpcbot exec %s\n", c.Text())
		}
		if o.Timer != nil {
			// A timed change from a terminal: wait here and put it back,
			// like the bot would (Ctrl-C stops waiting and says what to
			// run by hand).
			term.print("Waiting %s to put it back (Ctrl-C stops waiting)…\n", commands.FormatDuration(o.Timer.For))
			if err := waitForTimers(ctx, svc, term); err != nil {
				for _, t := range mustPending(svc) {
					fmt.Fprintf(stderr, "⏱ not put back: mpcbot exec stopped. Run %s yourself.\n", t.RevertCommands())
				}
				return exitFailed
			}
		}
		return code
	}
	return exitUsage
}

// exitCode is exec's exit code for an outcome.
func exitCode(o commands.Outcome) int {
	switch o.Status() {
	case commands.StatusOK:
		return exitOK
	case commands.StatusConfirm, commands.StatusRefused:
		return exitRefused
	}
	return exitFailed
}

func mustPending(svc *commands.Service) []commands.Timer {
	ts, _ := svc.Timers.Pending(context.Background())
	return ts
}

func attrsToAny(o commands.Outcome) []any {
	var as []any
	for _, a := range o.LogAttrs() {
		as = append(as, a)
	}
	return as
}
