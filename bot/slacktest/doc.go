// Package slacktest is a fake Slack for end-to-end tests of a Socket Mode bot.
//
// It owns everything the bot talks to on Slack's side: apps.connections.open,
// the Socket Mode websocket (hello, pings, envelopes, acks, disconnects), the
// Web API methods the bot calls (chat.postMessage, chat.postEphemeral,
// chat.update, views.publish, users.info, usergroups.users.list, auth.test,
// bots.info) and the response_url endpoint. It listens on 127.0.0.1 and
// speaks the real protocol, so the real slack-go client connects to it with
//
//	api := slack.New(srv.BotToken(), slack.OptionAppLevelToken(srv.AppToken()), slack.OptionAPIURL(srv.APIURL()))
//	client := socketmode.New(api)
//
// and it rejects what Slack rejects: wrong tokens, unknown channels, channels
// the bot may not post to, restricted channels and threads, missing text,
// Block Kit limits, bad thread_ts, edits of other people's messages, used-up
// response URLs, bad Home views. Knobs inject 429s, 5xx and Slack errors
// (FailNext, FailAlways), a per-channel posting limit (WithChannelRateLimit),
// disconnect messages (Disconnect, RefreshConnection,
// RefreshRandomConnection), dropped TCP connections (DropConnections,
// DropConnection), half-open silent links (SilenceConnections, SetSilent) and
// a flapping link (FlapAfterHello). Several bot processes (replicas) may
// connect with the same app token; nothing assumes one client.
//
// What a user would see is recorded: Messages (every post, update, ephemeral,
// response_url reply, slash-command ack reply and dispatch_failed notice, in
// order), the current state of channels, DMs and threads (MessagesIn,
// ThreadReplies, Ephemerals), each user's Home tab (HomeView, HomeViews), and
// per envelope the deliveries, the ack, its latency and whether the 3 s
// deadline was missed or no connection was open (WaitAck, Envelopes, Stats).
// Rejected calls are in Calls.
//
// The package does not import testing; waits take a context. NewServer panics
// like httptest.NewServer if it cannot start; programs use Start.
//
// # Choices where Slack's behaviour is undocumented
//
// Authentication. apps.connections.open wants the app token in the
// Authorization header: no token (or one only in the form) is not_authed, any
// other token invalid_auth (slack-go stops on both). Other methods take the bot
// token from the header or a form "token" field; a JSON body must use the
// header (as Slack documents); the app token there is not_allowed_token_type.
// Injected failures are consumed after authentication. A 429 carries
// {"ok":false,"error":"ratelimited"} and Retry-After when RetryAfter > 0; a 5xx
// has an HTML body, as Slack's does. Unknown methods answer unknown_method.
// auth.test and bots.info (for the app's own bot id; another is
// bot_not_found, none missing_argument) name the same app id as hello's
// connection_info.app_id and every payload's api_app_id.
//
// Connections. A ticket from apps.connections.open is good for one upgrade; a
// missing, unknown or used one gets HTTP 401. Origin is not checked. hello has
// num_connections (open connections including this one), debug_info
// {host "applink-fake-N", build_number, approximate_connection_time 18060, or
// 360 with debug_reconnects=true} and connection_info.app_id. PINGs carry
// "Ping from <host>" every 5 s (Slack's cadence is unverified, about 10 s;
// slack-go gives up after 30 s). Beyond 10 open connections the new one gets
// disconnect/too_many_websockets (no hello) and a close frame. Disconnect sends
// the message, a close frame and closes at once, to every open connection.
// RefreshConnection refreshes one: refresh_requested and a close at once, or
// first "warning", then after the warning lead (WithRefreshWarningLead,
// default 10 s as Slack says) refresh_requested and a close; the link keeps
// delivering meanwhile, and slack-go, which reconnects on any disconnect
// message, closes it at the warning. A silenced connection keeps its TCP
// connection but gets no PINGs, and frames from the client are lost, as on a
// half-open link.
//
// Envelopes. Each goes to exactly one open connection chosen at random
// (reproducible with WithSeed), silenced ones included: Slack cannot tell a
// half-open link, so an envelope sent there is lost (Delivery.Lost, Stats.Lost)
// and its ack deadline runs out. With no connection open the envelope is not
// queued and never delivered later (bolt-js#2216): it is marked
// DispatchFailed, counted in Stats.DispatchFailed, WaitAck returns
// ErrDispatchFailed at once, and the user who typed or clicked sees an
// ephemeral Message of Method "dispatch_failed" in that channel
// (`/mpc failed with the error "dispatch_failed"` for a command,
// "dispatch_failed" for a click, where Slack shows a warning icon by the
// button); an events_api envelope is shown to no one (Slack retries events
// later: Redeliver). accepts_response_payload is true for slash commands and
// false for block_actions (the docs example says true, the python-slack-sdk
// capture false) and events. A click on an ephemeral message carries no
// "message" object. Users join a known channel when they run a command or
// click there. Acks count on any connection; latency runs from the latest
// delivery; an ack after the deadline is Late and its payload is not shown;
// frames of 20 KiB or more are dropped (slack-go's observation). A
// slash-command ack payload is shown like a response: ephemeral to the
// invoking user unless response_type is in_channel; refused content (e.g.
// invalid_blocks) is noted in Ack.Error and nothing is shown. Interactive ack
// payloads are not shown. Redeliver resends the same envelope_id with
// retry_attempt N and retry_reason "timeout" (the reason seen in
// bolt-python's fixture), for any envelope type, to another connection than
// the previous delivery's when one is open. Every payload carries api_app_id
// (the server's app unless a test sets another: SlashCommand.APIAppID,
// BlockAction.APIAppID, HomeAction.APIAppID, AppHomeOpened.APIAppID).
//
// Posting. Channels are addressed by id; chat.postMessage to a known user id
// (U…, W…) posts in the app's DM with that user (created on first use, id
// "D" + the user id without its first letter, see DMChannel) and answers with
// the D… id; an unknown user id is channel_not_found. Unknown channel:
// channel_not_found. Public without the bot: not_in_channel (allowed with
// WithChatWritePublic). Private, G… or D… without the bot: channel_not_found.
// Archived: is_archived. Per-channel rate limit (off by default): a token
// bucket per channel on chat.postMessage, counting every attempt to a channel
// the bot may post to; over it HTTP 429 {"error":"ratelimited"} with
// Retry-After in whole seconds (at least 1), or HTTP 200
// {"ok":false,"error":"rate_limited"} after SetRateLimitStyle(RateLimitOKFalse).
// Read-only channel: restricted_action_read_only_channel. No text, no blocks
// and no attachments: no_text. Text over 40 000 characters is truncated to
// 40 000 and the answer carries warning message_truncated (also in
// response_metadata.warnings; Message.Truncated); the same holds for
// response_url and ack replies. thread_ts that is not "<seconds>.<6 digits>":
// invalid_thread_ts with "[ERROR] <value> is not a valid thread_ts" (a real
// capture); a well-formed thread_ts that is not a visible top-level message of
// that channel (unknown, a reply, ephemeral, deleted, elsewhere):
// thread_not_found. That is stricter than Slack, which has been seen to answer
// ok and orphan the reply (python-slack-sdk#840): the error makes the bot's
// bug visible. A reply to a message marked with SetNoReplies:
// cannot_reply_to_message. Top-level post in a thread-only channel:
// restricted_action_thread_only_channel; reply in a locked thread
// (LockThread): restricted_action_thread_locked. The restricted_action_*
// errors apply to chat.postMessage only (response_url "bypasses channel
// posting permissions"). chat.postEphemeral needs the user to be a member:
// user_not_in_channel. chat.update: unknown channel channel_not_found;
// archived channel is_inactive; unknown, ephemeral or deleted ts
// message_not_found; a message not posted by the bot cant_update_message; a
// message marked with CloseEditWindow edit_window_closed; text over 4 000
// characters msg_too_long. ts values are "<unix seconds>.<microseconds>",
// unique and increasing.
//
// Block Kit. blocks that are not a JSON array: invalid_blocks_format. Rule
// violations: invalid_blocks, with response_metadata.messages (and errors) in
// Slack's "[ERROR] <what> [json-pointer:/blocks/0/text/text]" form; the wording
// approximates Slack's. Checked: at most 50 blocks (100 in a Home view); known
// block types only; block_id ≤ 255 and unique; section text or fields (text ≤
// 3000, ≤ 10 fields of ≤ 2000); actions 1–25 elements; context 1–10 elements;
// header plain_text ≤ 150; text objects plain_text/mrkdwn, non-empty, no emoji
// on mrkdwn; button text plain_text ≤ 75, value ≤ 2000, url ≤ 3000, action_id
// ≤ 255 and unique in its block, style primary/danger; confirm objects need
// title (plain_text ≤ 100), text (plain_text ≤ 300, as Slack documents; mrkdwn
// is refused), confirm and deny (plain_text ≤ 30). Slack's cumulative
// msg_blocks_too_long limit is not modelled.
//
// Home tab. views.publish (Tier 4, not rate limited here) takes user_id, a view
// {type "home", blocks, private_metadata ≤ 3000, callback_id ≤ 255,
// external_id ≤ 255} and an optional hash, as JSON with the bearer token or as
// a form. Checks in order: no user_id invalid_arguments ("invalid
// `user_id`"); no view invalid_arguments; view over 250 KiB view_too_large;
// not an object, type not "home", fields too long, blocks missing or null (as
// slack-go sends an empty Blocks) or breaking the Block Kit rules
// invalid_arguments with messages pointing under /view (Slack reports view
// problems as invalid_arguments, not invalid_blocks); Home tab off
// (WithHomeTabDisabled, SetHomeTab) not_enabled; unknown user (or the bot)
// user_not_found; a hash that is not the current view's (or any hash when
// there is none) hash_conflict; an external_id used by another user's current
// view duplicate_external_id. Success answers the view object (the reference
// example's shape) with a new id and hash, and it becomes the user's current
// view. SendAppHomeOpened and OpenHome send app_home_opened as an events_api
// envelope (event_callback with event_id, event_time, authorizations; the
// event has user, channel = the app's DM, tab, event_ts, and view = the
// current Home view on the home tab when one exists; retry_attempt 0 and
// retry_reason "" on every frame). A click in a Home view (ClickHomeButton,
// SendHomeAction) has container {type "view", view_id} and the view with its
// hash, and no channel, no message and no response_url (bolt-js #316, #332);
// a click may name an older view (a stale screen).
//
// response_url. Up to 5 successful uses within 30 minutes; then HTTP 404 with
// {"ok":false,"error":"used_url"} or "expired_url" (unverified; slack-go sees
// a StatusCodeError 404). An unknown id is 404 invalid_url. The body must be
// JSON (else invalid_payload); content errors (no_text, invalid_blocks) are
// HTTP 200 {"ok":false,…}; success is 200 application/json {"ok":true}. Replies
// are ephemeral to the invoking user by default; in_channel posts in the
// channel whatever the bot's membership, in a thread when thread_ts is valid.
// replace_original and delete_original act on the "original": for a block
// action the clicked message (a channel message or an ephemeral one, which
// chat.update cannot touch); for a slash command the message its ack showed,
// then the last message sent through that URL; with nothing to replace a new
// message is posted.
//
// Directory. users.info answers user_not_found for unknown users;
// usergroups.users.list answers no_such_subteam for unknown groups and
// invalid_arguments without one; FailUserGroups makes it answer HTTP 503.
package slacktest
