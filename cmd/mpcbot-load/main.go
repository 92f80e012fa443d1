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
// and, for a fleet of -replicas bot processes sharing one Redis
// (fleet/redistest) behind the same fake Slack and Plivo simulator:
//
//   - ack latency of one replica and of the fleet at the same rate, in
//     the same run;
//   - the fleet-wide Plivo request rate during a flood (the simulator sees
//     every replica's requests) against the one shared budget, with some
//     envelopes redelivered to another connection and buttons tapped
//     twice — each must be answered once, by one replica;
//   - a refresh storm: one connection somewhere refreshed every second
//     while commands flow (no dispatch_failed, one outcome each);
//   - Redis killed for a while during a flood: no command lost, the
//     fleet-wide rate still within burst + rate × T.
//
// -pprof DIR builds the bot with a profiling endpoint added at build time
// (the bot's source has none) and writes a CPU profile and an execution
// trace of each ack phase;
// -bot-cpus and -driver-cpus pin the bot processes and this program to
// CPUs (taskset), e.g. to measure the bot on one core of its own.
//
// Usage (from the repository root):
//
//	go run ./cmd/mpcbot-load            # the full run, a few minutes
//	go run ./cmd/mpcbot-load -quick     # about 2 min
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
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
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

	replicas        int
	fleetAckRate    float64
	refreshRate     float64
	refreshDuration time.Duration
	refreshEvery    time.Duration
	refreshAligned  bool
	redeliverEvery  int
	doubleTaps      int
	outageAfter     time.Duration
	outageDown      time.Duration
	outageFlood     time.Duration

	quiet     float64
	quietWait time.Duration

	pprofDir   string
	botCPUs    string
	driverCPUs string

	logLevel      string
	childEnv      map[string]string
	plivoLogLimit int
	settle        time.Duration
	phases        map[string]bool
}

// allPhases are the phases in the order they run.
var allPhases = []string{"ack", "e2e", "flood", "queue", "fleet-ack", "fleet-flood", "refresh", "outage"}

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
	if o.driverCPUs != "" {
		if err := pinSelf(o.driverCPUs); err != nil {
			fmt.Fprintf(stderr, "mpcbot-load: -driver-cpus: %v\n", err)
			return 1
		}
	}
	if o.pprofDir != "" {
		if err := os.MkdirAll(o.pprofDir, 0o755); err != nil {
			fmt.Fprintf(stderr, "mpcbot-load: -pprof: %v\n", err)
			return 1
		}
	}
	if o.bin == "" {
		overlay := ""
		if o.pprofDir != "" {
			if overlay, err = pprofOverlay(ctx, o.workDir); err != nil {
				fmt.Fprintf(stderr, "mpcbot-load: %v\n", err)
				return 1
			}
			fmt.Fprintf(stderr, "building ./cmd/mpcbot with a profiling endpoint (%s) …\n", pprofEnv)
		} else {
			fmt.Fprintln(stderr, "building ./cmd/mpcbot …")
		}
		o.bin, err = buildBot(ctx, o.workDir, overlay)
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
					r.acks = append(r.acks, runAckPhase(ctx, o, ackSpec{kind: kind, rate: rate, run: run}))
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
		f := runFloodPhase(ctx, o, floodSpec{name: "flood", duration: o.floodDuration})
		r.flood = &f
	}
	if o.phases["queue"] && ctx.Err() == nil {
		progress("bounded queue: %d + %d commands with Plivo hanging …", o.queueSize, o.queueExtra)
		q := runQueuePhase(ctx, o)
		r.queue = &q
	}
	runFleetPhases(ctx, o, r, progress)
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
	quick := fs.Bool("quick", false, "a short run (about 2 min): 2 s ack phases (changes only), 6 s floods at 20/s, an 8 s refresh storm, Redis down 4 s; explicit flags still win")
	fs.StringVar(&o.bin, "bin", "", "the mpcbot binary to drive (default: go build ./cmd/mpcbot into a temporary directory)")
	fs.StringVar(&o.workDir, "dir", "", "directory for the binary and the bot's logs (default: a temporary one, removed at the end)")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory (the bot's logs) at the end")
	fs.StringVar(&o.out, "out", "", "also write the report to this file")
	fs.StringVar(&phases, "phases", strings.Join(allPhases, ","), "phases to run")
	fs.StringVar(&ackRates, "ack-rates", "100,500", "slash commands per second for the ack-latency phases")
	fs.DurationVar(&o.ackDuration, "ack-duration", 10*time.Second, "how long each ack-latency phase sends")
	fs.IntVar(&o.ackRepeat, "ack-repeat", 1, "run each ack phase this many times (interleaved) and report the median p99 too: a shared machine is noisy")
	fs.StringVar(&ackKinds, "ack-commands", "change,help", "commands for the ack phases: change (mute/unmute a member) and/or help")
	fs.Float64Var(&o.e2eRate, "e2e-rate", 5, "changes per second for the end-to-end phase (keep it below -plivo-rate)")
	fs.DurationVar(&o.e2eDuration, "e2e-duration", 10*time.Second, "how long the end-to-end phase sends")
	fs.Float64Var(&o.plivoRate, "plivo-rate", 10, "PLIVO_RATE for the end-to-end and flood phases (in the fleet ones, the budget all replicas share)")
	fs.IntVar(&o.plivoBurst, "plivo-burst", 10, "PLIVO_BURST for the end-to-end and flood phases (in the fleet ones, the budget all replicas share)")
	fs.Float64Var(&o.floodRate, "flood-rate", 50, "changes per second during the Plivo floods (one process, fleet, Redis outage)")
	fs.DurationVar(&o.floodDuration, "flood-duration", 20*time.Second, "how long the flood and the fleet flood send")
	fs.StringVar(&windows, "windows", "1s,5s,10s", "window lengths T for the Plivo rate check")
	fs.IntVar(&o.queueSize, "queue", 10000, "MPC_QUEUE_SIZE for the queue phase")
	fs.IntVar(&o.queueExtra, "queue-extra", 500, "commands sent beyond the queue size (each must be refused visibly)")
	fs.Float64Var(&o.queueSendRate, "queue-rate", 2000, "commands per second while filling the queue")
	fs.IntVar(&o.replicas, "replicas", 3, "bot processes in the fleet phases (fleet-ack, fleet-flood, refresh, outage), sharing one Redis; replicas × SLACK_CONNECTIONS must stay ≤ 10")
	fs.Float64Var(&o.fleetAckRate, "fleet-ack-rate", 500, "changes per second for fleet-ack (one replica, then the fleet; -ack-duration, -ack-repeat)")
	fs.Float64Var(&o.refreshRate, "refresh-rate", 100, "changes per second during the refresh storm")
	fs.DurationVar(&o.refreshDuration, "refresh-duration", 30*time.Second, "how long the refresh storm lasts")
	fs.DurationVar(&o.refreshEvery, "refresh-every", time.Second, "one connection somewhere in the fleet is refreshed this often during the storm")
	fs.BoolVar(&o.refreshAligned, "refresh-aligned", false, "refresh at whole periods of -refresh-every from the first command, i.e. at the moment a command is sent (default: at a random moment of each period); exposes the race between a delivery and a refresh")
	fs.IntVar(&o.redeliverEvery, "redeliver-every", 20, "in fleet-flood and refresh, every n-th envelope is delivered again once acked, as Slack does when an ack is lost (0: none)")
	fs.IntVar(&o.doubleTaps, "double-taps", 20, "in fleet-flood and refresh, buttons under results tapped twice by their user once the commands are answered")
	fs.DurationVar(&o.outageAfter, "outage-after", 8*time.Second, "in the outage phase, Redis is killed this long after the flood starts")
	fs.DurationVar(&o.outageDown, "outage", 10*time.Second, "how long Redis stays down in the outage phase")
	fs.DurationVar(&o.outageFlood, "outage-flood", 30*time.Second, "how long the flood of the outage phase sends (at -flood-rate)")
	fs.Float64Var(&o.quiet, "quiet", 0, "before each ack phase sends, wait until the other processes on the machine use at most this many cores over a second (0: do not wait); for a shared machine")
	fs.DurationVar(&o.quietWait, "quiet-wait", 2*time.Minute, "the longest -quiet waits before sending anyway (the report says so)")
	fs.StringVar(&o.pprofDir, "pprof", "", "build the bot with a profiling endpoint and write a CPU profile and a 1 s execution trace of every ack phase (of the first replica) into this directory")
	fs.StringVar(&o.botCPUs, "bot-cpus", "", "run every bot process pinned to these CPUs (taskset -c list, e.g. 1); combine with -env GOMAXPROCS=1")
	fs.StringVar(&o.driverCPUs, "driver-cpus", "", "pin this program — the fake Slack, the Plivo simulator and the sender — to these CPUs (taskset -a -c list, e.g. 0)")
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
		def("refresh-duration", func() { o.refreshDuration = 8 * time.Second })
		def("double-taps", func() { o.doubleTaps = 5 })
		def("outage-after", func() { o.outageAfter = 3 * time.Second })
		def("outage", func() { o.outageDown = 4 * time.Second })
		def("outage-flood", func() { o.outageFlood = 12 * time.Second })
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
		if !slices.Contains(allPhases, p) {
			return nil, fmt.Errorf("-phases: unknown phase %q (%s)", p, strings.Join(allPhases, ", "))
		}
		o.phases[p] = true
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
	case o.ackDuration <= 0 || o.e2eDuration <= 0 || o.floodDuration <= 0 || o.refreshDuration <= 0 || o.refreshEvery <= 0 || o.outageDown <= 0 || o.outageFlood <= 0:
		return nil, errors.New("durations must be > 0")
	case o.fleetAckRate <= 0 || o.refreshRate <= 0:
		return nil, errors.New("rates must be > 0")
	case o.quiet < 0 || o.quietWait < 0:
		return nil, errors.New("-quiet and -quiet-wait must be ≥ 0")
	case o.replicas < 1 || o.redeliverEvery < 0 || o.doubleTaps < 0:
		return nil, errors.New("-replicas must be ≥ 1, -redeliver-every and -double-taps ≥ 0")
	case o.replicas*connectionsPerBot(o, worldConfig{}) > 10:
		return nil, fmt.Errorf("-replicas %d × %d connections each is over Slack's 10 per app", o.replicas, connectionsPerBot(o, worldConfig{}))
	case o.outageAfter < 0 || o.outageAfter+o.outageDown >= o.outageFlood:
		return nil, errors.New("the outage (-outage-after + -outage) must end before the flood (-outage-flood) does")
	case o.pprofDir != "" && o.bin != "":
		return nil, errors.New("-pprof builds its own binary (with the profiling endpoint): drop -bin")
	}
	for flagName, list := range map[string]string{"-bot-cpus": o.botCPUs, "-driver-cpus": o.driverCPUs} {
		if list == "" {
			continue
		}
		if _, err := cpuCount(list); err != nil {
			return nil, fmt.Errorf("%s: %w", flagName, err)
		}
		if _, err := exec.LookPath("taskset"); err != nil {
			return nil, fmt.Errorf("%s needs taskset (util-linux): %w", flagName, err)
		}
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
