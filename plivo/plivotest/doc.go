// Package plivotest owns an in-memory simulator of Plivo's Multiparty Call
// (MPC) REST API served over real HTTP on 127.0.0.1, shaped like
// net/http/httptest: NewServer (or Start, which returns an error instead of
// panicking) starts it, Server.URL is its base URL and Close stops it.
//
// The simulator keeps MPCs and their participants in memory, answers the
// endpoints mpcbot uses (Update Participant, List Participants, Get
// Participant, Get MPC; also List MPCs, Kick Participant and End MPC) with
// bodies shaped like Plivo's official fixtures, and rejects what Plivo
// rejects, following the "Decisions for this project" table of
// shared/plivo-api.md:
//
//   - HTTP basic auth must match the server's credentials (401 otherwise; the
//     token is never echoed), and the auth id in the path must be the
//     authenticated one (401 otherwise).
//   - Every path ends with '/' (404 without it); unknown paths get 404 and
//     known paths with a wrong method 405.
//   - Update Participant takes a JSON object (Content-Type application/json)
//     whose mute, hold and coach_mode keys are booleans; at least one is
//     required; coach_mode is refused for "all" (and for a comma-separated
//     list) with 400 "coach_mode can be updated only for a specific
//     member_id".
//   - Unknown MPCs, ended MPCs addressed by name_, unknown members and members
//     who have left get 404 with a text naming what was looked up.
//   - The account budget (300 requests per 5 s by default) answers 429
//     {"api_id","error":"too many requests"}.
//
// Errors are always {"api_id": "<uuid>", "error": "<text>"}.
//
// MPCs are addressed as name_<percent-encoded friendly name> or
// uuid_<mpc_uuid>. The path is split on '/' in its escaped form and each
// segment is percent-decoded once, so "%2F" inside a name never splits a
// segment. name_ lookups match live MPCs only; uuid_ lookups match any MPC.
//
// Tests set up state with AddMPC, AddParticipant, RemoveParticipant and
// EndMPC, read it back with Participant and Participants, inspect what the
// client sent with Requests and AppliedUpdates, and inject faults with
// FailNext, SetDelay, SetUpdateStatus and SetResultSpelling.
//
// Choices where Plivo is silent (all documented on the relevant names):
// Update Participant answers 200 (202 via SetUpdateStatus); the result
// strings say "succeeded" (SetResultSpelling("succeded") gives the QA
// fixture's spelling); List Participants returns the newest join first (as
// in Plivo's documentation example) with one entry per join; 429s carry no
// Retry-After header unless SetAccountLimitRetryAfter(true); requests are
// checked in the order auth, account id, account limit, route, method,
// body, MPC, member.
//
// Not simulated: Add Participant over HTTP (501; use AddParticipant),
// Activate MPC (always 404, as Plivo answers for an MPC that is not in the
// initialized state: simulated MPCs start active), recordings, play/speak,
// the List MPCs time-window filters (ignored) and the asynchronous
// callback_url variant (refused with 400 so a test never mistakes it for the
// synchronous API).
//
// The package does not import testing, so the mpcbot demo console can run
// it.
package plivotest
