package bot

import "time"

// Metrics receives what the bot measures. cmd/mpcbot implements it with
// Prometheus; a nil Config.Metrics measures nothing.
type Metrics interface {
	// Ack observes the time taken to acknowledge an envelope of a kind
	// (slash_command, interactive, …).
	Ack(kind string, d time.Duration)
	// Command counts a finished command by source, action and status.
	Command(source, action, status string)
	// SlackError counts a failed Slack Web API call by method and error.
	SlackError(method, code string)
	// SocketEvent counts connection events: connecting, connected, hello,
	// connection_error, reconnect_throttled.
	SocketEvent(event string)
	// Queue reports the number of accepted, unfinished commands.
	Queue(n int)
}

type noMetrics struct{}

func (noMetrics) Ack(string, time.Duration)      {}
func (noMetrics) Command(string, string, string) {}
func (noMetrics) SlackError(string, string)      {}
func (noMetrics) SocketEvent(string)             {}
func (noMetrics) Queue(int)                      {}
