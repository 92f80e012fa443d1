package main

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// scrape fetches /metrics and parses the Prometheus text format.
func (h *harness) scrape() map[string]*dto.MetricFamily {
	h.t.Helper()
	code, body := h.get("/metrics")
	if code != http.StatusOK {
		h.t.Fatalf("/metrics = %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		h.t.Fatalf("/metrics is not valid Prometheus text: %v", err)
	}
	return fams
}

// metricValue returns the value of the series of a family whose labels
// include want: a counter's or gauge's value, a histogram's sample count.
// Series that match are summed; a missing series is 0.
func metricValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	fam := fams[name]
	if fam == nil {
		return 0
	}
	total := 0.0
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

// histogramSum returns the summed sample sum of a histogram's series.
func histogramSum(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	total := 0.0
	if fam := fams[name]; fam != nil {
		for _, m := range fam.GetMetric() {
			if hasLabels(m, want) && m.Histogram != nil {
				total += m.GetHistogram().GetSampleSum()
			}
		}
	}
	return total
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

type labels = map[string]string

func TestHealthz(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	code, body := h.get("/healthz")
	if code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	// Alive even while Slack is unreachable.
	h.slack.FailAlways("apps.connections.open", slacktest.Failure{Status: 503})
	h.slack.DropConnections()
	h.waitReadyz(http.StatusServiceUnavailable)
	if code, _ := h.get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d during a Slack outage, want 200", code)
	}
}

// /readyz: ready while connected (Plivo not asked yet counts as ready),
// not ready once Plivo refused the credentials, ready again once Plivo
// accepts them.
func TestReadyzPlivoCredentials(t *testing.T) {
	t.Parallel()
	t.Run("wrong token", func(t *testing.T) {
		t.Parallel()
		h := startBot(t, withEnv("PLIVO_AUTH_TOKEN", "not-the-right-token-000000000000000000"))
		if code, body := h.get("/readyz"); code != http.StatusOK {
			t.Fatalf("/readyz = %d (%q) before Plivo was asked, want 200", code, body)
		}
		_, _, reply := h.change(supervisorID, "mute test_mpc_1 101", "mute member 101 in test_mpc_1")
		for _, w := range []string{"❌ mute", "Plivo refused mpcbot's credentials", "HTTP 401"} {
			if !strings.Contains(reply.Text, w) {
				t.Errorf("reply lacks %q:\n%s", w, reply.Text)
			}
		}
		code, body := h.get("/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "PLIVO_AUTH_TOKEN") {
			t.Fatalf("/readyz = %d %q after a 401, want 503 naming PLIVO_AUTH_TOKEN", code, body)
		}
		if strings.Contains(body, "not-the-right-token") {
			t.Fatal("/readyz shows the token")
		}
	})
	t.Run("401 then accepted", func(t *testing.T) {
		t.Parallel()
		h := startBot(t)
		h.plivo.FailNext(1, plivotest.Fault{Status: 401})
		h.change(supervisorID, "mute test_mpc_1 101", "mute member 101 in test_mpc_1")
		if code := h.readyz(); code != http.StatusServiceUnavailable {
			t.Fatalf("/readyz = %d after a 401, want 503", code)
		}
		_, _, reply := h.change(supervisorID, "mute test_mpc_1 101", "mute member 101 in test_mpc_1")
		if !strings.Contains(reply.Text, "✅ mute") {
			t.Fatalf("reply:\n%s", reply.Text)
		}
		if code := h.readyz(); code != http.StatusOK {
			t.Fatalf("/readyz = %d after Plivo accepted the credentials, want 200", code)
		}
		// Accepted once: a later 401 (a blip, or a rotation in progress)
		// shows in the reply and the metrics, not in readiness.
		h.plivo.FailNext(1, plivotest.Fault{Status: 401})
		h.change(supervisorID, "unmute test_mpc_1 101", "unmute member 101 in test_mpc_1")
		if code := h.readyz(); code != http.StatusOK {
			t.Fatalf("/readyz = %d after a 401 following an accepted call, want 200 (accepted once)", code)
		}
	})
}

// /metrics after commands, a Plivo retry, a queue at the limiter, a Slack
// API error and a reconnect: the values count what happened.
func TestMetrics(t *testing.T) {
	t.Parallel()
	h := startBot(t, withEnv("PLIVO_RATE", "2", "PLIVO_BURST", "1", "SLACK_CONNECTIONS", "1"))
	before := h.scrape()
	if v := metricValue(before, "mpcbot_socket_connected", nil); v != 1 {
		t.Fatalf("mpcbot_socket_connected = %v while connected", v)
	}
	customer, agent, sup := h.member("customer"), h.member("agent"), h.member("supervisor")

	// Two muted members, one retried after a 503; one failed hold.
	h.plivo.FailNext(1, plivotest.Fault{Status: 503})
	h.change(supervisorID, "mute test_mpc_1 "+customer, "mute member "+customer)
	h.change(supervisorID, "mute test_mpc_1 "+agent, "mute member "+agent)
	h.change(supervisorID, "hold test_mpc_1 999", "hold member 999")
	// A refused command.
	id, _ := h.slash(strangerID, channelID, "hold test_mpc_1 all")
	h.auditFor(id)

	// Three members at once with a limiter of 2/s and burst 1: two wait,
	// one for 0.5 s and one for 1 s, and the queue gauge shows them.
	var wg sync.WaitGroup
	defer wg.Wait() // also if the wait below fails: the change is still running
	wg.Go(func() {
		h.change(supervisorID, "unmute test_mpc_1 "+strings.Join([]string{customer, agent, sup}, ","), "unmute members")
	})
	waitUntil(t, waitFor, "mpcbot_plivo_limiter_queue to show a waiting request", func() bool {
		return metricValue(h.scrape(), "mpcbot_plivo_limiter_queue", nil) >= 1
	})
	wg.Wait()

	// A Slack API error and a reconnect.
	h.slack.FailNext("chat.postMessage", 1, slacktest.Failure{Status: 429, RetryAfter: 1})
	h.slack.FailNext("chat.postMessage", 1, slacktest.Failure{Status: 503})
	h.change(supervisorID, "unhold test_mpc_1 "+customer, "unhold member "+customer)
	at := time.Now()
	h.slack.DropConnections()
	h.waitNewConnection(at)

	m := h.scrape()
	for _, c := range []struct {
		name   string
		labels labels
		want   float64
	}{
		{"mpcbot_commands_total", labels{"source": "typed", "action": "mute", "status": "ok"}, 2},
		{"mpcbot_commands_total", labels{"source": "typed", "action": "hold", "status": "failed"}, 1},
		{"mpcbot_commands_total", labels{"source": "typed", "action": "hold", "status": "refused"}, 1},
		{"mpcbot_commands_total", labels{"source": "typed", "action": "unmute", "status": "ok"}, 1},
		{"mpcbot_commands_total", labels{"source": "typed", "action": "unhold", "status": "ok"}, 1},
		// Requests: 2 mutes (+1 retry), 1 hold → 404, 3 unmutes, 1 unhold.
		{"mpcbot_plivo_request_seconds", labels{"op": "update_participant", "status": "200"}, 6},
		{"mpcbot_plivo_request_seconds", labels{"op": "update_participant", "status": "503"}, 1},
		{"mpcbot_plivo_request_seconds", labels{"op": "update_participant", "status": "404"}, 1},
		{"mpcbot_plivo_requests_total", labels{"op": "update_participant"}, 8},
		// One token per request: 8 updates and the read back after the 503.
		{"mpcbot_plivo_limiter_wait_seconds", nil, 9},
		{"mpcbot_plivo_requests_total", labels{"op": "get_participant"}, 1},
		{"mpcbot_plivo_limiter_queue", nil, 0},
		{"mpcbot_slack_api_errors_total", labels{"method": "chat.postMessage", "error": "ratelimited"}, 1},
		{"mpcbot_slack_api_errors_total", labels{"method": "chat.postMessage", "error": "http_503"}, 1},
		{"mpcbot_slack_api_errors_total", nil, 2},
		{"mpcbot_socket_connected", nil, 1},
		{"mpcbot_command_queue", nil, 0},
	} {
		if got := metricValue(m, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if s := histogramSum(m, "mpcbot_plivo_limiter_wait_seconds", nil); s < 0.4 {
		t.Errorf("limiter wait sum %.3fs: the two queued requests waited at least 0.5 s and 1 s", s)
	}
	for _, ev := range []string{"connecting", "connected", "hello"} {
		was, now := metricValue(before, "mpcbot_socket_events_total", labels{"event": ev}), metricValue(m, "mpcbot_socket_events_total", labels{"event": ev})
		if now != was+1 {
			t.Errorf("mpcbot_socket_events_total{event=%q} went %v → %v over one reconnect, want +1", ev, was, now)
		}
	}
	if v := metricValue(m, "mpcbot_ack_seconds", labels{"kind": "slash_command"}); v != 6 {
		t.Errorf("mpcbot_ack_seconds{kind=slash_command} count = %v, want 6 (one per command typed)", v)
	}

	// Not connected: the gauge says so.
	h.slack.FailAlways("apps.connections.open", slacktest.Failure{Status: 503})
	h.slack.DropConnections()
	h.waitReadyz(http.StatusServiceUnavailable)
	m = h.scrape()
	if v := metricValue(m, "mpcbot_socket_connected", nil); v != 0 {
		t.Errorf("mpcbot_socket_connected = %v while disconnected", v)
	}
	// The failed attempt is counted once slack-go reports it.
	waitUntil(t, waitFor, "mpcbot_socket_events_total{event=connection_error} to count the failing apps.connections.open", func() bool {
		return metricValue(h.scrape(), "mpcbot_socket_events_total", labels{"event": "connection_error"}) >= 1
	})
}
