package main

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v10"

	"github.com/mpcbot/mpcbot/bot"
	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/fleet"
	"github.com/mpcbot/mpcbot/plivo"
)

// Config is everything mpcbot reads from its environment. The variable
// names are a contract with operators: keep them exactly as documented.
type Config struct {
	SlackAppToken    string        `env:"SLACK_APP_TOKEN" hint:"an app-level token starting xapp- (Basic Information → App-Level Tokens, scope connections:write)"`
	SlackBotToken    string        `env:"SLACK_BOT_TOKEN" hint:"the bot token starting xoxb- (OAuth & Permissions → Bot User OAuth Token)"`
	SlackAPIURL      string        `env:"SLACK_API_URL" envDefault:"https://slack.com/api/" hint:"an http(s) URL ending in /api/"`
	SlackPingTimeout time.Duration `env:"SLACK_PING_TIMEOUT" envDefault:"30s" hint:"a duration like 30s"`
	SlackConnections int           `env:"SLACK_CONNECTIONS" envDefault:"2" hint:"a whole number from 1 to 10 (Slack allows 10 Socket Mode connections per app in total, all replicas together)"`

	PlivoAuthID    string        `env:"PLIVO_AUTH_ID" hint:"your Plivo Auth ID (console → Account → API keys)"`
	PlivoAuthToken string        `env:"PLIVO_AUTH_TOKEN" hint:"your Plivo Auth Token (console → Account → API keys)"`
	PlivoAPIURL    string        `env:"PLIVO_API_URL" envDefault:"https://api.plivo.com" hint:"an http(s) URL like https://api.plivo.com"`
	PlivoRate      float64       `env:"PLIVO_RATE" envDefault:"10" hint:"requests per second, a number > 0 (default 10)"`
	PlivoBurst     int           `env:"PLIVO_BURST" envDefault:"10" hint:"a whole number ≥ 1 (default 10)"`
	PlivoTimeout   time.Duration `env:"PLIVO_TIMEOUT" envDefault:"10s" hint:"a duration like 10s"`

	Supervisors     []string      `env:"MPC_SUPERVISORS" hint:"comma-separated Slack user ids (U…), user-group ids (S…) or *"`
	Agents          []string      `env:"MPC_AGENTS" hint:"comma-separated Slack user ids (U…), user-group ids (S…) or *"`
	Channels        []string      `env:"MPC_CHANNELS" hint:"comma-separated Slack channel ids (C…)"`
	AuditChannel    string        `env:"MPC_AUDIT_CHANNEL" hint:"a Slack channel id (C…) the bot is in"`
	ConfirmAllAbove int           `env:"MPC_CONFIRM_ALL_ABOVE" envDefault:"5" hint:"a whole number ≥ 0 (0 = always confirm)"`
	ButtonMaxAge    time.Duration `env:"MPC_BUTTON_MAX_AGE" envDefault:"1h" hint:"a duration like 1h"`
	DoubleTapWindow time.Duration `env:"MPC_DOUBLE_TAP_WINDOW" envDefault:"5s" hint:"a duration like 5s"`
	CommandTimeout  time.Duration `env:"MPC_COMMAND_TIMEOUT" envDefault:"15s" hint:"a duration like 15s"`
	GroupTTL        time.Duration `env:"MPC_GROUP_TTL" envDefault:"5m" hint:"a duration like 5m"`
	GroupMaxStale   time.Duration `env:"MPC_GROUP_MAX_STALE" envDefault:"1h" hint:"a duration like 1h"`
	TimedMax        time.Duration `env:"MPC_TIMED_MAX" envDefault:"1h" hint:"a duration of at least 1s, like 1h"`
	TimedDefault    time.Duration `env:"MPC_TIMED_DEFAULT" envDefault:"2m" hint:"a duration like 2m, from 1s to MPC_TIMED_MAX"`
	QueueSize       int           `env:"MPC_QUEUE_SIZE" envDefault:"10000" hint:"a whole number ≥ 1"`

	RedisURL     string        `env:"REDIS_URL" hint:"redis://[user:password@]host:port[/db] or rediss://… (empty: one process, no shared state)"`
	RedisTimeout time.Duration `env:"REDIS_TIMEOUT" envDefault:"50ms" hint:"a duration like 50ms: every Redis call is bounded by it, Redis is never waited for longer"`

	HTTPAddr      string        `env:"HTTP_ADDR" envDefault:":8080" hint:"host:port like :8080, or empty to disable"`
	LogLevel      string        `env:"LOG_LEVEL" envDefault:"info" hint:"debug, info, warn or error"`
	LogFormat     string        `env:"LOG_FORMAT" envDefault:"json" hint:"json or text"`
	ShutdownGrace time.Duration `env:"SHUTDOWN_GRACE" envDefault:"20s" hint:"a duration like 20s"`
}

// slackDefaultAPIURL is SLACK_API_URL's default.
const slackDefaultAPIURL = "https://slack.com/api/"

// need says which variables a subcommand requires.
type need int

const (
	needSlack need = 1 << iota
	needPlivo
)

// loadConfig reads the environment. Every error names the variable and
// how to fix it; no error ever repeats a secret's value.
func loadConfig(environ map[string]string, needs need) (Config, error) {
	var cfg Config
	// Unset HTTP_ADDR means the default; set-but-empty disables the server.
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ}); err != nil {
		return cfg, explainEnvError(err)
	}
	if v, ok := environ["HTTP_ADDR"]; ok && v == "" {
		cfg.HTTPAddr = ""
	}
	var errs []error
	bad := func(name, problem string) {
		errs = append(errs, fmt.Errorf("%s %s: set it to %s", name, problem, hintOf(name)))
	}
	if needs&needSlack != 0 {
		switch {
		case cfg.SlackAppToken == "":
			bad("SLACK_APP_TOKEN", "is not set")
		case !strings.HasPrefix(cfg.SlackAppToken, "xapp-"):
			bad("SLACK_APP_TOKEN", "does not start with xapp-")
		}
		switch {
		case cfg.SlackBotToken == "":
			bad("SLACK_BOT_TOKEN", "is not set")
		case !strings.HasPrefix(cfg.SlackBotToken, "xoxb-"):
			bad("SLACK_BOT_TOKEN", "does not start with xoxb-")
		}
		if !validURL(cfg.SlackAPIURL) {
			bad("SLACK_API_URL", "is not an http(s) URL")
		}
		if cfg.SlackPingTimeout < time.Second {
			bad("SLACK_PING_TIMEOUT", "is shorter than 1s")
		}
		if cfg.SlackConnections < 1 || cfg.SlackConnections > bot.MaxConnections {
			bad("SLACK_CONNECTIONS", fmt.Sprintf("is %d", cfg.SlackConnections))
		}
	}
	if needs&needPlivo != 0 {
		if cfg.PlivoAuthID == "" {
			bad("PLIVO_AUTH_ID", "is not set")
		}
		if cfg.PlivoAuthToken == "" {
			bad("PLIVO_AUTH_TOKEN", "is not set")
		}
		if !validURL(cfg.PlivoAPIURL) {
			bad("PLIVO_API_URL", "is not an http(s) URL")
		}
		if cfg.PlivoRate <= 0 {
			bad("PLIVO_RATE", "must be > 0")
		}
		if cfg.PlivoBurst < 1 {
			bad("PLIVO_BURST", "must be ≥ 1")
		}
		if cfg.PlivoTimeout <= 0 {
			bad("PLIVO_TIMEOUT", "must be > 0")
		}
	}
	if cfg.ConfirmAllAbove < 0 {
		bad("MPC_CONFIRM_ALL_ABOVE", "is negative")
	}
	if cfg.QueueSize < 1 {
		bad("MPC_QUEUE_SIZE", "must be ≥ 1")
	}
	for name, d := range map[string]time.Duration{
		"MPC_BUTTON_MAX_AGE": cfg.ButtonMaxAge, "MPC_DOUBLE_TAP_WINDOW": cfg.DoubleTapWindow,
		"MPC_COMMAND_TIMEOUT": cfg.CommandTimeout, "MPC_GROUP_TTL": cfg.GroupTTL, "SHUTDOWN_GRACE": cfg.ShutdownGrace,
		"MPC_GROUP_MAX_STALE": cfg.GroupMaxStale,
	} {
		if d <= 0 {
			bad(name, "must be > 0")
		}
	}
	if cfg.TimedMax < commands.MinTimed {
		bad("MPC_TIMED_MAX", "is shorter than 1s")
	}
	if cfg.TimedDefault < commands.MinTimed || (cfg.TimedMax >= commands.MinTimed && cfg.TimedDefault > cfg.TimedMax) || cfg.TimedDefault%time.Second != 0 {
		bad("MPC_TIMED_DEFAULT", fmt.Sprintf("is %s", cfg.TimedDefault))
	}
	if cfg.RedisTimeout <= 0 || cfg.RedisTimeout > 5*time.Second {
		bad("REDIS_TIMEOUT", fmt.Sprintf("is %s (from 1ms to 5s)", cfg.RedisTimeout))
	}
	if cfg.RedisURL != "" {
		if _, err := fleet.ParseURL(cfg.RedisURL); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := parseLevel(cfg.LogLevel); err != nil {
		bad("LOG_LEVEL", fmt.Sprintf("is %q", cfg.LogLevel))
	}
	if cfg.LogFormat != "json" && cfg.LogFormat != "text" {
		bad("LOG_FORMAT", fmt.Sprintf("is %q", cfg.LogFormat))
	}
	return cfg, errors.Join(errs...)
}

func validURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}

// explainEnvError rewrites caarlos0/env's errors, which name struct
// fields, into errors that name the variable and the fix.
func explainEnvError(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("reading the environment: %w", err)
	}
	var errs []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			name := envName(pe.Name)
			errs = append(errs, fmt.Errorf("%s has an invalid value: set it to %s", name, hintOf(name)))
			continue
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

func envName(field string) string {
	f, ok := reflect.TypeOf(Config{}).FieldByName(field)
	if !ok {
		return field
	}
	return f.Tag.Get("env")
}

func hintOf(name string) string {
	t := reflect.TypeOf(Config{})
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("env") == name {
			return t.Field(i).Tag.Get("hint")
		}
	}
	return "a valid value"
}

// grammar is the /mpc grammar with the configured limits.
func (c Config) grammar() commands.Grammar { return commands.Grammar{TimedMax: c.TimedMax} }

// secrets returns the values that must never appear in logs, errors or
// replies.
func (c Config) secrets() []string {
	var s []string
	for _, v := range []string{c.SlackAppToken, c.SlackBotToken, c.PlivoAuthToken} {
		if len(v) >= 4 {
			s = append(s, v)
		}
	}
	if c.PlivoAuthToken != "" {
		s = append(s, plivo.SecretForms(c.PlivoAuthID, c.PlivoAuthToken)...)
	}
	for _, v := range fleet.Secrets(c.RedisURL) {
		if len(v) >= 4 {
			s = append(s, v)
		}
	}
	// Longest first: a secret that contains another is replaced whole.
	slices.SortStableFunc(s, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(s)
}
