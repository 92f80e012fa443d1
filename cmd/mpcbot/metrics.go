package main

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mpcbot/mpcbot/fleet"
	"github.com/mpcbot/mpcbot/plivo"
)

// metrics implements bot.Metrics and plivo.Observer with Prometheus
// collectors registered on their own registry (served at /metrics).
type metrics struct {
	registry *prometheus.Registry

	commands      *prometheus.CounterVec
	ackSeconds    *prometheus.HistogramVec
	plivoSeconds  *prometheus.HistogramVec
	plivoRequests *prometheus.CounterVec
	limiterWait   prometheus.Histogram
	limiterQueue  prometheus.Gauge
	slackErrors   *prometheus.CounterVec
	socketEvents  *prometheus.CounterVec
	commandQueue  prometheus.Gauge
}

func newMetrics(connected, connections func() float64) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpcbot_commands_total", Help: "Finished requests by source (typed, button, cli), action and status.",
		}, []string{"source", "action", "status"}),
		ackSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mpcbot_ack_seconds", Help: "Time to acknowledge a Socket Mode envelope.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .05, .25, 1, 3},
		}, []string{"kind"}),
		plivoSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mpcbot_plivo_request_seconds", Help: "Plivo HTTP request latency per attempt.",
			Buckets: prometheus.DefBuckets,
		}, []string{"op", "status"}),
		plivoRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpcbot_plivo_requests_total", Help: "Plivo HTTP attempts by operation and status (0 = no response).",
		}, []string{"op", "status"}),
		limiterWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mpcbot_plivo_limiter_wait_seconds", Help: "Time spent waiting for a Plivo rate-limiter token.",
			Buckets: []float64{0, .01, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		limiterQueue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mpcbot_plivo_limiter_queue", Help: "Callers currently waiting for a Plivo rate-limiter token.",
		}),
		slackErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpcbot_slack_api_errors_total", Help: "Failed Slack Web API calls by method and error.",
		}, []string{"method", "error"}),
		socketEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mpcbot_socket_events_total", Help: "Socket Mode connection events (connecting = a reconnect attempt).",
		}, []string{"event"}),
		commandQueue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mpcbot_command_queue", Help: "Accepted commands not yet finished.",
		}),
	}
	m.registry.MustRegister(m.commands, m.ackSeconds, m.plivoSeconds, m.plivoRequests, m.limiterWait,
		m.limiterQueue, m.slackErrors, m.socketEvents, m.commandQueue,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mpcbot_socket_connected", Help: "1 while a Socket Mode connection is open and Slack said hello.",
		}, connected),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mpcbot_socket_connections", Help: "Socket Mode connections of this process that are open (Slack said hello).",
		}, connections),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watchFleet exposes the state shared on Redis: whether it is reachable
// (0 = degraded: per-replica budget, dedupe and timers per process) and how
// many replicas were seen alive.
func (m *metrics) watchFleet(f *fleet.Fleet) {
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mpcbot_redis_healthy", Help: "1 while the shared state on Redis is reachable, 0 while degraded to per-process state.",
		}, func() float64 {
			if f.Status().Healthy {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mpcbot_fleet_replicas", Help: "Replicas seen alive on Redis (the divisor of the Plivo budget while degraded).",
		}, func() float64 { return float64(len(f.Replicas())) }),
	)
}

// Ack implements bot.Metrics.
func (m *metrics) Ack(kind string, d time.Duration) {
	m.ackSeconds.WithLabelValues(kind).Observe(d.Seconds())
}

// Command implements bot.Metrics.
func (m *metrics) Command(source, action, status string) {
	m.commands.WithLabelValues(source, action, status).Inc()
}

// SlackError implements bot.Metrics.
func (m *metrics) SlackError(method, code string) { m.slackErrors.WithLabelValues(method, code).Inc() }

// SocketEvent implements bot.Metrics.
func (m *metrics) SocketEvent(event string) { m.socketEvents.WithLabelValues(event).Inc() }

// Queue implements bot.Metrics.
func (m *metrics) Queue(n int) { m.commandQueue.Set(float64(n)) }

// LimiterWait implements plivo.Observer.
func (m *metrics) LimiterWait(d time.Duration) { m.limiterWait.Observe(d.Seconds()) }

// LimiterQueue implements plivo.Observer.
func (m *metrics) LimiterQueue(delta int) { m.limiterQueue.Add(float64(delta)) }

// Attempt implements plivo.Observer.
func (m *metrics) Attempt(op string, status int, d time.Duration, err error) {
	label := strconv.Itoa(status)
	if status == 0 {
		label = "error"
		var pe *plivo.Error
		if errors.As(err, &pe) {
			label = pe.Kind.String()
		}
	}
	m.plivoSeconds.WithLabelValues(op, label).Observe(d.Seconds())
	m.plivoRequests.WithLabelValues(op, label).Inc()
}
