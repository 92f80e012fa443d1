package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/mpcbot/mpcbot/commands"
)

// Slack Web API retries: a rate limit waits for its Retry-After (any number
// of times, within the caller's deadline); 5xx and network errors back off
// with jitter, at most slackAttempts attempts.
const (
	slackAttempts    = 5
	slackBackoffBase = 250 * time.Millisecond
	slackBackoffMax  = 5 * time.Second
	replyTimeout     = 60 * time.Second
	// maxRateLimitJitter spreads the retries of many replies that met the
	// same per-channel limit.
	maxRateLimitJitter = 500 * time.Millisecond
)

const (
	responseEphemeral = slack.ResponseTypeEphemeral
	responseInChannel = slack.ResponseTypeInChannel
)

// callSlack runs call with retries, counting failures by method and error.
func (b *Bot) callSlack(ctx context.Context, method string, call func(context.Context) error) error {
	var err error
	failures := 0
	for {
		err = call(ctx)
		if err == nil {
			return nil
		}
		b.metrics.SlackError(method, slackErrorCode(err))
		wait, limited, retry := slackRetryWait(err, failures+1)
		if !limited {
			failures++
		}
		if !retry || failures >= slackAttempts {
			return err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return err
		}
		b.log.Debug("retrying Slack call", "method", method, "wait", wait, "err", slackErrorCode(err))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// slackRetryWait says whether and when to retry a failed call; limited
// reports a rate limit (which does not count as a failed attempt).
func slackRetryWait(err error, attempt int) (wait time.Duration, limited, retry bool) {
	jitter := rand.N(maxRateLimitJitter)
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return max(rl.RetryAfter, time.Second) + jitter, true, true
	}
	backoff := min(slackBackoffBase<<(attempt-1), slackBackoffMax)
	backoff = backoff/2 + rand.N(backoff/2+1)
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		if sc.Code == http.StatusTooManyRequests {
			return time.Second + jitter, true, true
		}
		return backoff, false, sc.Code >= 500
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return backoff, false, true
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "ratelimited", "rate_limited":
			// Slack's method references list rate_limited in the body of an
			// HTTP 200 too, without Retry-After: wait a second.
			return time.Second + jitter, true, true
		case "internal_error", "fatal_error", "service_unavailable", "request_timeout":
			return backoff, false, true
		}
	}
	return 0, false, false
}

// slackErrorCode returns a short label for a Slack error, for metrics and
// for telling users why a post failed.
func slackErrorCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return truncate(se.Err, 60)
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
	if errors.Is(err, errResponseURLHost) {
		return "response_url_refused"
	}
	return "network"
}

// cannotPost reports whether Slack refused a post because of where it was
// going (a DM, a private channel the bot is not in, an archived, read-only
// or thread-only channel, a locked thread): the response_url still works
// there.
func cannotPost(err error) bool {
	switch slackErrorCode(err) {
	case "not_in_channel", "channel_not_found", "is_archived", "restricted_action", "not_allowed_token_type",
		"ekm_access_denied", "team_access_not_granted", "restricted_action_read_only_channel",
		"restricted_action_thread_only_channel", "restricted_action_thread_locked", "cannot_reply_to_message",
		"thread_not_found":
		return true
	}
	return false
}

// blocksRefused reports whether Slack refused a message for its content
// (Block Kit rules, length): the same message as plain text fits.
func blocksRefused(err error) bool {
	switch slackErrorCode(err) {
	case "invalid_blocks", "invalid_blocks_format", "msg_blocks_too_long", "msg_too_long", "invalid_arguments", "no_text":
		return true
	}
	return false
}

// slackResponse is the part of a chat.postMessage / chat.update answer
// mpcbot reads: decoding only this (not the echoed message with its blocks)
// is most of the cost of a post saved.
type slackResponse struct {
	OK               bool   `json:"ok"`
	Error            string `json:"error"`
	TS               string `json:"ts"`
	Channel          string `json:"channel"`
	ResponseMetadata struct {
		Messages []string `json:"messages"`
	} `json:"response_metadata"`
}

// maxSlackResponse bounds how much of an answer is read.
const maxSlackResponse = 1 << 20

// webAPI calls a chat.* method with a form body, as slack-go does, and
// reads only the fields mpcbot needs. Errors are slack-go's types, so one
// classification serves every call.
func (b *Bot) webAPI(ctx context.Context, method string, form url.Values) (slackResponse, error) {
	var r slackResponse
	// The client's timeout rides on the context, and the call goes through
	// a client without one: behind a wrapped transport (the connect guard)
	// net/http enforces a client Timeout with a goroutine per request,
	// which on a busy core queues ahead of the acks.
	if t := b.httpClient.Timeout; t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	body := form.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.cfg.APIURL+method, strings.NewReader(body))
	if err != nil {
		return r, fmt.Errorf("%s: build request: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+b.cfg.BotToken)
	resp, err := (&http.Client{Transport: b.httpClient.Transport}).Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL
		}
		return r, fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusTooManyRequests {
		if secs, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && secs >= 0 {
			return r, &slack.RateLimitedError{RetryAfter: time.Duration(secs) * time.Second}
		}
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return r, slack.StatusCodeError{Code: resp.StatusCode, Status: resp.Status}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxSlackResponse)).Decode(&r); err != nil {
		return r, fmt.Errorf("%s: read the answer: %w", method, err)
	}
	if !r.OK {
		return r, slack.SlackErrorResponse{Err: r.Error, ResponseMetadata: slack.ResponseMetadata{Messages: r.ResponseMetadata.Messages}}
	}
	return r, nil
}

func messageForm(m message) (url.Values, error) {
	form := url.Values{"text": {m.Text}, "unfurl_links": {"false"}, "unfurl_media": {"false"}}
	if len(m.Blocks) > 0 {
		blocks, err := json.Marshal(m.Blocks)
		if err != nil {
			return nil, fmt.Errorf("encode blocks: %w", err)
		}
		form.Set("blocks", string(blocks))
	}
	return form, nil
}

// post posts m in a channel (or a user's DM, by user id), in a thread if
// threadTS is set — as plain text if Slack refuses its blocks — and
// returns the message's ts.
func (b *Bot) post(ctx context.Context, channel, threadTS string, m message) (string, error) {
	ts, _, err := b.postFitting(ctx, channel, threadTS, m)
	return ts, err
}

// postIn is post that also returns the channel Slack posted in (a DM's
// D… id when channel is a user id).
func (b *Bot) postIn(ctx context.Context, channel, threadTS string, m message) (ts, postedIn string, err error) {
	form, err := messageForm(m)
	if err != nil {
		return "", "", err
	}
	form.Set("channel", channel)
	if threadTS != "" {
		form.Set("thread_ts", threadTS)
	}
	err = b.callSlack(ctx, "chat.postMessage", func(ctx context.Context) error {
		r, err := b.webAPI(ctx, "chat.postMessage", form)
		ts, postedIn = r.TS, r.Channel
		return err
	})
	return ts, postedIn, err
}

// update replaces a channel message the bot posted.
func (b *Bot) update(ctx context.Context, channel, ts string, m message) error {
	form, err := messageForm(m)
	if err != nil {
		return err
	}
	form.Set("channel", channel)
	form.Set("ts", ts)
	return b.callSlack(ctx, "chat.update", func(ctx context.Context) error {
		_, err := b.webAPI(ctx, "chat.update", form)
		return err
	})
}

// errResponseURLHost refuses a response_url that is not Slack's.
var errResponseURLHost = errors.New("response_url is not on a Slack host")

// SlackResponseURL reports whether a response_url is one of Slack's:
// https on hooks.slack.com or another *.slack.com or *.slack-gov.com host.
// mpcbot posts only there, whatever a payload says.
func SlackResponseURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.User != nil || u.Port() != "" {
		return false
	}
	host := strings.ToLower(u.Hostname())
	for _, domain := range []string{"slack.com", "slack-gov.com"} {
		if host == domain || strings.HasSuffix(host, "."+domain) {
			return true
		}
	}
	return false
}

// respond answers through a response_url: ephemeral or in_channel, or
// replacing the message the button was in.
func (b *Bot) respond(ctx context.Context, responseURL, responseType string, replace bool, m message) error {
	if responseURL == "" {
		return errors.New("no response_url in the payload")
	}
	if !b.cfg.ResponseURLAllowed(responseURL) {
		return errResponseURLHost
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

func msgOptions(m message) []slack.MsgOption {
	return []slack.MsgOption{slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...), slack.MsgOptionDisableLinkUnfurl()}
}

// replyContext returns a context for the replies of a command: it outlives
// the command's own deadline (a user must hear about a timeout) and the
// start of shutdown, but is bounded — by replyTimeout, and by the end of
// the shutdown margin.
func (b *Bot) replyContext(_ context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.replyBase, replyTimeout)
}

// goReply runs a reply outside a worker; shutdown waits for it.
func (b *Bot) goReply(f func(ctx context.Context)) {
	b.replies.Go(func() {
		ctx, cancel := b.replyContext(context.Background())
		defer cancel()
		f(ctx)
	})
}

// respondOrLog answers through the job's response_url, as plain text if
// Slack refuses the blocks; when even that fails, the loss is logged with
// the request it belongs to (there is no other way to reach the user).
func (b *Bot) respondOrLog(ctx context.Context, j job, responseType string, replace bool, m message) {
	err := b.respond(ctx, j.responseURL, responseType, replace, m)
	if err != nil && blocksRefused(err) {
		err = b.respond(ctx, j.responseURL, responseType, replace, plainText(m))
	}
	if err != nil {
		b.log.Error("reply lost: response_url failed", "envelope_id", j.envelopeID, "user_id", j.requester.UserID,
			"err", slackErrorCode(err), "reply", truncate(m.Text, 200))
	}
}

// tellRequester shows m to the requester only: through the response_url,
// or in the Home view / their DM with the bot for a click in the Home tab
// (which has no response_url).
func (b *Bot) tellRequester(ctx context.Context, j job, m message) {
	if j.responseURL == "" && j.requester.UserID != "" {
		if j.viewID != "" {
			b.publishHomeNote(ctx, j, m)
			return
		}
		if _, err := b.post(ctx, j.requester.UserID, "", m); err != nil {
			b.log.Error("reply lost: direct message failed", "envelope_id", j.envelopeID, "user_id", j.requester.UserID,
				"err", slackErrorCode(err), "reply", truncate(m.Text, 200))
		}
		return
	}
	b.respondOrLog(ctx, j, responseEphemeral, false, m)
}

// target says where a result goes and how to fall back.
type target struct {
	// channel and threadTS: where the result is posted (channel may be a
	// user id for a DM); empty channel skips posting.
	channel, threadTS string
	// responseURL is the fallback (in_channel, with note saying why).
	responseURL string
	// note explains why there is no thread, when channel is empty.
	note       string
	user       string
	envelopeID string
}

func (b *Bot) replyTarget(j job) target {
	return target{channel: j.requester.ChannelID, responseURL: j.responseURL, user: j.requester.UserID, envelopeID: j.envelopeID}
}

// deliver shows a result, trying until the user sees something: the
// thread (or channel); as plain text if Slack refuses the blocks (never the
// same blocks elsewhere); the response_url, saying why there is no thread;
// plain text there too. It returns where the result went.
func (b *Bot) deliver(ctx context.Context, to target, m message) commands.Place {
	place := commands.Place{ResponseURL: to.responseURL, UserID: to.user}
	note := to.note
	if to.channel != "" {
		ts, in, err := b.postFitting(ctx, to.channel, to.threadTS, m)
		if err == nil {
			place.ChannelID, place.ThreadTS = in, firstNonEmpty(to.threadTS, ts)
			return place
		}
		b.log.Warn("reply not posted; answering through response_url", "envelope_id", to.envelopeID, "err", slackErrorCode(err))
		note = noThreadNote(err, to.threadTS != "")
	}
	if to.responseURL == "" {
		b.log.Error("reply lost: no response_url to fall back to", "envelope_id", to.envelopeID, "user_id", to.user, "reply", truncate(m.Text, 200))
		return place
	}
	if note != "" {
		m = withNote(m, note)
	}
	b.respondOrLog(ctx, job{envelopeID: to.envelopeID, responseURL: to.responseURL, requester: commands.Requester{UserID: to.user}},
		responseInChannel, false, m)
	return place
}

// postFitting posts m, and when Slack refuses its blocks or its length,
// posts it again as plain text in the same place — never the same blocks
// elsewhere.
func (b *Bot) postFitting(ctx context.Context, channel, threadTS string, m message) (ts, postedIn string, err error) {
	ts, postedIn, err = b.postIn(ctx, channel, threadTS, m)
	if err != nil && blocksRefused(err) {
		b.log.Warn("Slack refused a message's blocks; sending it as plain text", "channel_id", channel, "err", slackErrorCode(err))
		ts, postedIn, err = b.postIn(ctx, channel, threadTS, plainText(m))
	}
	return ts, postedIn, err
}

// plainText is the last-resort form of a message: its text only, bounded
// so that it always fits (Slack truncates or refuses longer ones).
func plainText(m message) message {
	return message{Text: truncate(m.Text, maxPlainText)}
}

// maxPlainText bounds a plain-text reply (chat.update refuses text over
// 4 000 characters; a section 3 000).
const maxPlainText = 3000

// noThreadNote says why a result came without a thread.
func noThreadNote(err error, inThread bool) string {
	code := slackErrorCode(err)
	switch code {
	case "not_in_channel":
		return "No thread: I'm not a member of this channel (Slack said not_in_channel). Invite me with `/invite @mpcbot` to get results in threads."
	case "channel_not_found":
		return "No thread: this is a DM or a private channel I'm not in (Slack said channel_not_found), so I can only answer here."
	case "is_archived":
		return "No thread: this channel is archived (Slack said is_archived), so I can only answer here."
	case "restricted_action_read_only_channel":
		return "No thread: this channel is read-only for apps (Slack said " + code + "), so I can only answer here."
	case "restricted_action_thread_only_channel":
		return "No thread: this channel only takes replies in threads and I could not start one (Slack said " + code + "), so here are the results."
	case "restricted_action_thread_locked":
		return "I couldn't reply in the thread: it is locked (Slack said " + code + "), so here are the results."
	case "cannot_reply_to_message", "thread_not_found":
		return "I couldn't reply in the thread (Slack said " + code + "), so here are the results."
	}
	if inThread {
		return "I couldn't reply in the thread (Slack said " + code + "), so here are the results."
	}
	if cannotPost(err) {
		return "No thread: Slack doesn't let me post in this channel (" + code + "), so I can only answer here."
	}
	return "No thread: posting the request message failed (Slack said " + code + "), so here are the results."
}

// withNote puts a context line above a message.
func withNote(m message, note string) message {
	n := escape(note)
	return message{
		Text:   n + "\n" + m.Text,
		Blocks: append([]slack.Block{slack.NewContextBlock("note", mrkdwn(n))}, m.Blocks...),
	}
}
