// Package slacktest is a fake Slack for end-to-end tests of a Socket Mode bot.
//
// It owns everything the bot talks to on Slack's side: apps.connections.open,
// the Socket Mode websocket (hello, pings, envelopes, acks, disconnects), the
// Web API methods the bot calls (chat.postMessage, chat.postEphemeral,
// chat.update, users.info, usergroups.users.list, auth.test) and the
// response_url endpoint. It listens on 127.0.0.1 and speaks the real protocol,
// so the real slack-go client connects to it with
//
//	api := slack.New(srv.BotToken(), slack.OptionAppLevelToken(srv.AppToken()), slack.OptionAPIURL(srv.APIURL()))
//	client := socketmode.New(api)
//
// and it rejects what Slack rejects: wrong tokens, unknown channels, channels
// the bot may not post to, missing text, Block Kit limits, bad thread_ts,
// edits of other people's messages, used-up response URLs. Knobs inject 429s,
// 5xx and Slack errors (FailNext, FailAlways), disconnect messages
// (Disconnect), dropped TCP connections (DropConnections), half-open silent
// links (SilenceConnections, SetSilent) and a flapping link (FlapAfterHello).
//
// What a user would see is recorded: Messages (every post, update, ephemeral,
// response_url reply and slash-command ack reply, in order), the current state
// of channels and threads (MessagesIn, ThreadReplies, Ephemerals), and per
// envelope the ack, its latency and whether the 3 s deadline was missed
// (WaitAck, Envelopes, Stats). Rejected calls are in Calls.
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
//
// Connections. A ticket from apps.connections.open is good for one upgrade; a
// missing, unknown or used one gets HTTP 401. Origin is not checked. hello has
// num_connections (open connections including this one), debug_info
// {host "applink-fake-N", build_number, approximate_connection_time 18060, or
// 360 with debug_reconnects=true} and connection_info.app_id. PINGs carry
// "Ping from <host>" every 5 s (Slack's cadence is unverified, about 10 s;
// slack-go gives up after 30 s). Beyond 10 open connections the new one gets
// disconnect/too_many_websockets (no hello) and a close frame. Disconnect sends
// the message, a close frame and closes at once for every reason (Slack keeps
// the link about 10 s after "warning"; slack-go reconnects immediately either
// way). A silenced connection keeps its TCP connection but gets no PINGs and no
// envelopes, and frames from the client are lost, as on a half-open link.
//
// Envelopes. Each goes to exactly one live, non-silent connection, round-robin;
// while there is none it is queued and its deadline does not run (real Slack
// probably fails the command at once). accepts_response_payload is true for
// slash commands and false for block_actions (the docs example says true, the
// python-slack-sdk capture false). A click on an ephemeral message carries no
// "message" object. Users join a known channel when they run a command or click
// there. Acks count on any connection; latency runs from the latest delivery; an
// ack after the deadline is Late and its payload is not shown; frames of 20 KiB
// or more are dropped (slack-go's observation). A slash-command ack payload is
// shown like a response: ephemeral to the invoking user unless response_type is
// in_channel; refused content (e.g. invalid_blocks) is noted in Ack.Error and
// nothing is shown. Interactive ack payloads are not shown. Redeliver resends
// the same envelope_id with retry_attempt N and retry_reason "timeout" (the
// reason seen in bolt-python's fixture), for any envelope type.
//
// Posting. Channels are addressed by id only. Unknown: channel_not_found.
// Public without the bot: not_in_channel (allowed with WithChatWritePublic).
// Private, G… or D… without the bot: channel_not_found. Archived: is_archived.
// No text, no blocks and no attachments: no_text; text over 40 000 characters:
// msg_too_long. thread_ts that is not "<seconds>.<6 digits>": invalid_thread_ts
// with "[ERROR] <value> is not a valid thread_ts" (a real capture); a
// well-formed thread_ts that is not a visible top-level message of that
// channel (unknown, a reply, ephemeral, deleted, elsewhere): thread_not_found.
// That is stricter than Slack, which has been seen to answer ok and orphan
// the reply (python-slack-sdk#840): the error makes the bot's bug visible.
// chat.postEphemeral needs the user to be a member: user_not_in_channel.
// chat.update: unknown channel channel_not_found; unknown, ephemeral or deleted
// ts message_not_found; a message not posted by the bot cant_update_message.
// ts values are "<unix seconds>.<microseconds>", unique and increasing.
//
// Block Kit. blocks that are not a JSON array: invalid_blocks_format. Rule
// violations: invalid_blocks, with response_metadata.messages (and errors) in
// Slack's "[ERROR] <what> [json-pointer:/blocks/0/text/text]" form; the wording
// approximates Slack's. Checked: at most 50 blocks; known block types only;
// block_id ≤ 255 and unique; section text or fields (text ≤ 3000, ≤ 10 fields
// of ≤ 2000); actions 1–25 elements; context 1–10 elements; header plain_text
// ≤ 150; text objects plain_text/mrkdwn, non-empty, no emoji on mrkdwn; button
// text plain_text ≤ 75, value ≤ 2000, url ≤ 3000, action_id ≤ 255 and unique
// in its block, style primary/danger; confirm objects need title (plain_text
// ≤ 100), text (≤ 300), confirm and deny (plain_text ≤ 30). Slack's cumulative
// msg_blocks_too_long limit is not modelled.
//
// response_url. Up to 5 successful uses within 30 minutes; then HTTP 404 with
// {"ok":false,"error":"used_url"} or "expired_url" (unverified; slack-go sees
// a StatusCodeError 404). An unknown id is 404 invalid_url. The body must be
// JSON (else invalid_payload); content errors (no_text, invalid_blocks) are
// HTTP 200 {"ok":false,…}; success is 200 application/json {"ok":true}. Replies
// are ephemeral to the invoking user by default; in_channel posts in the
// channel whatever the bot's membership, in a thread when thread_ts is valid.
// replace_original and delete_original act on the clicked message (block
// actions) or on the last message sent through that URL (slash commands); with
// nothing to replace a new message is posted.
//
// Directory. users.info answers user_not_found for unknown users;
// usergroups.users.list answers no_such_subteam for unknown groups and
// invalid_arguments without one; FailUserGroups makes it answer HTTP 503.
package slacktest
