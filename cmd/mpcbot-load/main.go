// Command mpcbot-load is the load benchmark of mpcbot: it builds the real
// bot binary, runs it as a child process against the fake Slack
// (bot/slacktest) and the Plivo simulator (plivo/plivotest), which live in
// this process, and prints a Markdown report of
//
//   - ack latency p50/p99 at fixed rates of slash commands (open loop: the
//     sender keeps its schedule whatever the bot does);
//   - end-to-end latency (envelope delivered → results posted in the thread)
//     below the Plivo limit;
//   - the Plivo request rate during a flood of changes against the
//     configured limiter: the busiest window of length T versus
//     burst + rate × T, and the sustained rate versus the configured one;
//   - the bot's RSS idle and with its bounded queue full, and whether the
//     commands beyond the queue were refused visibly;
//   - whether every command got exactly one visible outcome.
//
// Usage (from the repository root):
//
//	go run ./cmd/mpcbot-load            # the full run, a few minutes
//	go run ./cmd/mpcbot-load -quick     # about 30 s
//	go run ./cmd/mpcbot-load -h         # every knob
//
// It owns nothing the bot uses; it only measures. Each phase starts a
// fresh bot and fresh fakes, so the fakes' ever-growing logs stay bounded
// by the phase.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command-line settings.
type options struct {
	bin     string
	workDir string
	keep    bool
	out     string

	ackRates    []float64
	ackDuration time.Duration
	ackKinds    []string
	ackRepeat   int

	e2eRate     float64
	e2eDuration time.Duration

	plivoRate     float64
	plivoBurst    int
	floodRate     float64
	floodDuration time.Duration
	windows       []time.Duration

	queueSize     int
	queueExtra    int
	queueSendRate float64

	logLevel      string
	childEnv      map[string]string
	plivoLogLimit int
	settle        time.Duration
	phases        map[string]bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "mpcbot-load: %v\n", err)
		return 2
	}
	if o.workDir != "" {
		if err := os.MkdirAll(o.workDir, 0o755); err != nil {
			fmt.Fprintf(stderr, "mpcbot-load: -dir: %v\n", err)
			return 1
		}
	} else {
		o.workDir, err = os.MkdirTemp("", "mpcbot-load-")
		if err != nil {
			fmt.Fprintf(stderr, "mpcbot-load: %v\n", err)
			return 1
		}
		if !o.keep {
			defer os.RemoveAll(o.workDir)
		}
	}
	if o.bin == "" {
		fmt.Fprintln(stderr, "building ./cmd/mpcbot …")
		o.bin, err = buildBot(ctx, o.workDir)
		if err != nil {
			fmt.Fprintf(stderr, "mpcbot-load: %v\n", err)
			return 1
		}
	}
	r := &report{opts: o, args: args, started: time.Now()}
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	if o.phases["ack"] {
		for run := 1; run <= o.ackRepeat && ctx.Err() == nil; run++ {
			for _, rate := range o.ackRates {
				for _, kind := range o.ackKinds {
					progress("ack latency: %s at %g/s for %s (run %d of %d) …", kind, rate, o.ackDuration, run, o.ackRepeat)
					r.acks = append(r.acks, runAckPhase(ctx, o, kind, rate, run))
				}
			}
		}
	}
	if o.phases["e2e"] && ctx.Err() == nil {
		progress("end to end: changes at %g/s for %s …", o.e2eRate, o.e2eDuration)
		e := runE2EPhase(ctx, o)
		r.e2e = &e
	}
	if o.phases["flood"] && ctx.Err() == nil {
		progress("Plivo flood: changes at %g/s for %s against a limiter of %g/s burst %d …", o.floodRate, o.floodDuration, o.plivoRate, o.plivoBurst)
		f := runFloodPhase(ctx, o)
		r.flood = &f
	}
	if o.phases["queue"] && ctx.Err() == nil {
		progress("bounded queue: %d + %d commands with Plivo hanging …", o.queueSize, o.queueExtra)
		q := runQueuePhase(ctx, o)
		r.queue = &q
	}
	r.finished = time.Now()
	text := r.markdown()
	fmt.Fprint(stdout, text)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(text), 0o644); err != nil {
			fmt.Fprintf(stderr, "mpcbot-load: writing %s: %v\n", o.out, err)
			return 1
		}
	}
	if o.keep {
		fmt.Fprintf(stderr, "bot logs kept in %s\n", o.workDir)
	}
	if r.failed() {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("mpcbot-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	var ackRates, ackKinds, windows, childEnv, phases string
	quick := fs.Bool("quick", false, "a short run (about 30 s): 2 s ack phases (changes only), a 6 s flood at 20/s; explicit flags still win")
	fs.StringVar(&o.bin, "bin", "", "the mpcbot binary to drive (default: go build ./cmd/mpcbot into a temporary directory)")
	fs.StringVar(&o.workDir, "dir", "", "directory for the binary and the bot's logs (default: a temporary one, removed at the end)")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory (the bot's logs) at the end")
	fs.StringVar(&o.out, "out", "", "also write the report to this file")
	fs.StringVar(&phases, "phases", "ack,e2e,flood,queue", "phases to run")
	fs.StringVar(&ackRates, "ack-rates", "100,500", "slash commands per second for the ack-latency phases")
	fs.DurationVar(&o.ackDuration, "ack-duration", 10*time.Second, "how long each ack-latency phase sends")
	fs.IntVar(&o.ackRepeat, "ack-repeat", 1, "run each ack phase this many times (interleaved) and report the median p99 too: a shared machine is noisy")
	fs.StringVar(&ackKinds, "ack-commands", "change,help", "commands for the ack phases: change (mute/unmute a member) and/or help")
	fs.Float64Var(&o.e2eRate, "e2e-rate", 5, "changes per second for the end-to-end phase (keep it below -plivo-rate)")
	fs.DurationVar(&o.e2eDuration, "e2e-duration", 10*time.Second, "how long the end-to-end phase sends")
	fs.Float64Var(&o.plivoRate, "plivo-rate", 10, "PLIVO_RATE for the end-to-end and flood phases")
	fs.IntVar(&o.plivoBurst, "plivo-burst", 10, "PLIVO_BURST for the end-to-end and flood phases")
	fs.Float64Var(&o.floodRate, "flood-rate", 50, "changes per second during the Plivo flood")
	fs.DurationVar(&o.floodDuration, "flood-duration", 20*time.Second, "how long the flood sends")
	fs.StringVar(&windows, "windows", "1s,5s,10s", "window lengths T for the Plivo rate check")
	fs.IntVar(&o.queueSize, "queue", 10000, "MPC_QUEUE_SIZE for the queue phase")
	fs.IntVar(&o.queueExtra, "queue-extra", 500, "commands sent beyond the queue size (each must be refused visibly)")
	fs.Float64Var(&o.queueSendRate, "queue-rate", 2000, "commands per second while filling the queue")
	fs.StringVar(&o.logLevel, "log-level", "info", "LOG_LEVEL of the bot")
	fs.StringVar(&childEnv, "env", "", "extra environment for the bot, K=V,K=V (e.g. GOMAXPROCS=2,GOGC=50)")
	fs.IntVar(&o.plivoLogLimit, "plivo-log", 200000, "requests the Plivo simulator keeps in its log")
	fs.DurationVar(&o.settle, "settle", 2*time.Second, "pause after the bot starts before reading its idle RSS")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *quick {
		// Flags given explicitly still win.
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("ack-duration", func() { o.ackDuration = 2 * time.Second })
		def("ack-commands", func() { ackKinds = "change" })
		def("e2e-duration", func() { o.e2eDuration = 3 * time.Second })
		def("flood-rate", func() { o.floodRate = 20 })
		def("flood-duration", func() { o.floodDuration = 6 * time.Second })
		def("windows", func() { windows = "1s,2s,5s" })
		def("queue-rate", func() { o.queueSendRate = 4000 })
		def("settle", func() { o.settle = time.Second })
	}
	var err error
	if o.ackRates, err = parseFloats(ackRates); err != nil {
		return nil, fmt.Errorf("-ack-rates: %w", err)
	}
	if o.windows, err = parseDurations(windows); err != nil {
		return nil, fmt.Errorf("-windows: %w", err)
	}
	o.ackKinds = splitList(ackKinds)
	for _, k := range o.ackKinds {
		if k != "change" && k != "help" {
			return nil, fmt.Errorf("-ack-commands: %q is neither change nor help", k)
		}
	}
	o.phases = map[string]bool{}
	for _, p := range splitList(phases) {
		switch p {
		case "ack", "e2e", "flood", "queue":
			o.phases[p] = true
		default:
			return nil, fmt.Errorf("-phases: unknown phase %q (ack, e2e, flood, queue)", p)
		}
	}
	o.childEnv = map[string]string{}
	for _, kv := range splitList(childEnv) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("-env: %q is not K=V", kv)
		}
		o.childEnv[k] = v
	}
	switch {
	case o.plivoRate <= 0 || o.plivoBurst < 1:
		return nil, errors.New("-plivo-rate must be > 0 and -plivo-burst ≥ 1")
	case o.e2eRate <= 0 || o.floodRate <= 0 || o.queueSendRate <= 0:
		return nil, errors.New("rates must be > 0")
	case o.queueSize < 1 || o.queueExtra < 0:
		return nil, errors.New("-queue must be ≥ 1 and -queue-extra ≥ 0")
	case o.ackRepeat < 1:
		return nil, errors.New("-ack-repeat must be ≥ 1")
	case o.ackDuration <= 0 || o.e2eDuration <= 0 || o.floodDuration <= 0:
		return nil, errors.New("durations must be > 0")
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, f := range splitList(s) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func parseDurations(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range splitList(s) {
		d, err := time.ParseDuration(f)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%q is not a positive duration", f)
		}
		out = append(out, d)
	}
	return out, nil
}

// machine describes where the numbers were measured.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d CPUs (nproc; %s)%s, %s %s/%s", runtime.NumCPU(), model, kernel, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
