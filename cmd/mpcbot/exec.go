package main

import (
	"context"
	"fmt"
	"io"
	"strings"

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
	cmd, err := commands.Parse(text)
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
	svc := &commands.Service{Plivo: pc, ConfirmAllAbove: cfg.ConfirmAllAbove, Timeout: cfg.CommandTimeout}
	requester := commands.Requester{UserID: "cli", UserName: "mpcbot exec"}

	switch c := cmd.(type) {
	case commands.List:
		ro, err := svc.Roster(ctx, c.MPC)
		if err != nil {
			ex := commands.Explain(err, c.MPC)
			fmt.Fprintf(stderr, "❌ %s: %s\n→ %s\n", ex.Summary, ex.Detail, ex.Next)
			return exitFailed
		}
		fmt.Fprint(stdout, commands.RenderRosterText(ro))
		return exitOK
	case commands.Change:
		o := svc.Change(ctx, requester, c, commands.CLI)
		logger.Info("audit", attrsToAny(o)...)
		switch o.Status() {
		case commands.StatusOK:
			fmt.Fprint(stdout, commands.RenderText(o))
			return exitOK
		case commands.StatusConfirm:
			fmt.Fprint(stderr, commands.RenderText(o))
			c.Confirmed = true
			fmt.Fprintf(stderr, "  To go ahead: mpcbot exec %s\n", c.Text())
			return exitRefused
		}
		fmt.Fprint(stderr, commands.RenderText(o))
		return exitFailed
	}
	return exitUsage
}

func attrsToAny(o commands.Outcome) []any {
	var as []any
	for _, a := range o.LogAttrs() {
		as = append(as, a)
	}
	return as
}
