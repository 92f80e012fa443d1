package bot

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/slack-go/slack"
)

// Slack Web API retries: 429 honours Retry-After, 5xx and network errors
// back off with jitter; all bounded by the caller's context and at most
// slackAttempts attempts.
const (
	slackAttempts    = 5
	slackBackoffBase = 250 * time.Millisecond
	slackBackoffMax  = 5 * time.Second
	replyTimeout     = 60 * time.Second
)

// callSlack runs call with retries, counting failures by method and error.
func (b *Bot) callSlack(ctx context.Context, method string, call func(context.Context) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = call(ctx)
		if err == nil {
			return nil
		}
		b.metrics.SlackError(method, slackErrorCode(err))
		wait, retry := slackRetryWait(err, attempt)
		if !retry || attempt >= slackAttempts {
			return err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return err
		}
		b.log.Debug("retrying Slack call", "method", method, "attempt", attempt, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

func slackRetryWait(err error, attempt int) (time.Duration, bool) {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return max(rl.RetryAfter, time.Second), true
	}
	backoff := min(slackBackoffBase<<(attempt-1), slackBackoffMax)
	backoff = backoff/2 + rand.N(backoff/2+1)
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		return backoff, sc.Code >= 500 || sc.Code == 429
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return backoff, true
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited":
			return backoff, true
		}
	}
	return 0, false
}

// slackErrorCode returns a short label for a Slack error, for metrics and
// for telling users why a post failed.
func slackErrorCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return "ratelimited"
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		return "http_" + strconv.Itoa(sc.Code)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "timeout"
	}
	return "network"
}

// cannotPost reports whether Slack refused a post because of where it was
// going (a DM, a private channel the bot is not in, an archived channel):
// the response_url still works there.
func cannotPost(err error) bool {
	switch slackErrorCode(err) {
	case "not_in_channel", "channel_not_found", "is_archived", "restricted_action", "not_allowed_token_type", "ekm_access_denied", "team_access_not_granted":
		return true
	}
	return false
}

func msgOptions(m Message) []slack.MsgOption {
	return []slack.MsgOption{slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...), slack.MsgOptionDisableLinkUnfurl()}
}

// post posts m in a channel, in a thread if threadTS is set, and returns
// the message's ts.
func (b *Bot) post(ctx context.Context, channel, threadTS string, m Message) (string, error) {
	opts := msgOptions(m)
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	var ts string
	err := b.callSlack(ctx, "chat.postMessage", func(ctx context.Context) error {
		var err error
		_, ts, err = b.api.PostMessageContext(ctx, channel, opts...)
		return err
	})
	return ts, err
}

// update replaces a channel message the bot posted.
func (b *Bot) update(ctx context.Context, channel, ts string, m Message) error {
	return b.callSlack(ctx, "chat.update", func(ctx context.Context) error {
		_, _, _, err := b.api.UpdateMessageContext(ctx, channel, ts, msgOptions(m)...)
		return err
	})
}

// respond answers through a response_url: ephemeral or in_channel, or
// replacing the message the button was in.
func (b *Bot) respond(ctx context.Context, responseURL, responseType string, replace bool, m Message) error {
	if responseURL == "" {
		return errors.New("no response_url in the payload")
	}
	opts := append(msgOptions(m), slack.MsgOptionResponseURL(responseURL, responseType))
	if replace {
		opts = append(opts, slack.MsgOptionReplaceOriginal(responseURL))
	}
	return b.callSlack(ctx, "response_url", func(ctx context.Context) error {
		_, _, err := b.api.PostMessageContext(ctx, "", opts...)
		return err
	})
}

// replyContext returns a context for the replies of a command: it outlives
// the command's own deadline (a user must hear about a timeout) and
// shutdown cancellation, but is itself bounded.
func replyContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), replyTimeout)
}
