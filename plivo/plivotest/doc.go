// Package plivotest owns an in-memory simulator of Plivo's Multiparty Call
// (MPC) REST API served over real HTTP on 127.0.0.1, shaped like
// net/http/httptest: NewServer (or Start, which returns an error instead of
// panicking) starts it, Server.URL is its base URL and Close stops it.
//
// The simulator keeps MPCs and their participants in memory, answers the
// endpoints mpcbot uses (Update Participant, List Participants, Get
// Participant, Get MPC, List MPCs; also Activate MPC, Kick Participant and
// End MPC) with bodies shaped like Plivo's official fixtures, and rejects
// what Plivo rejects, following the "Decisions for this project" table of
// shared/plivo-api.md:
//
//   - HTTP basic auth must match the server's credentials (401 otherwise; the
//     token is never echoed unless SetEchoHeaders asks for it), and the auth
//     id in the path must be the authenticated one (401 otherwise).
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
// Errors are {"api_id": "<uuid>", "error": "<text>"} unless a knob below
// says otherwise.
//
// MPCs are addressed as name_<percent-encoded friendly name> or
// uuid_<mpc_uuid>. The path is split on '/' in its escaped form and each
// segment is percent-decoded once, so "%2F" inside a name never splits a
// segment. name_ lookups match live MPCs only; uuid_ lookups match any MPC.
//
// Tests set up state with AddMPC, CreateMPC (any status, uuid and times),
// AddParticipant, AddWaitingParticipant (start_mpc_on_enter false: the MPC
// starts Initialized), AddParticipantWithID, ActivateMPC,
// RemoveParticipant and EndMPC, read it back with Participant and
// Participants, inspect what the client sent with Requests and
// AppliedUpdates, and inject faults with FailNext, SetDelay,
// SetUpdateStatus and SetResultSpelling. WithSampleMPC adds one live call;
// WithSampleCalls a few more, in every state, for demos.
//
// Knobs for real-world answers that are not Plivo's documented shape:
// SetForbidden (403 {"api_id","error"}: geo permissions, unverified
// account), SetAuthErrorShape (401 bodies without api_id, or a plain JSON
// string), SetOversized (huge api_id, result strings and error texts with
// control and format characters) and SetEchoHeaders (error bodies that echo
// the request's headers and URL — credentials included, deliberately: the
// client must redact them; off by default, the server never echoes them
// otherwise).
//
// Choices where Plivo is silent (all documented on the relevant names):
// Update Participant answers 200 (202 via SetUpdateStatus); the result
// strings say "succeeded" (SetResultSpelling("succeded") gives the QA
// fixture's spelling); List Participants returns the newest join first (as
// in Plivo's documentation example) with one entry per join; List MPCs
// returns live MPCs first (newest creation first), then ended ones by
// end_time, latest first (as in Plivo's fixtures); its default 7-day
// window (no end_time filter) applies to ended MPCs only, and an explicit
// end_time filter leaves out live MPCs (they have no end_time); 429s carry
// no Retry-After header unless SetAccountLimitRetryAfter(true); requests
// are checked in the order auth, account id, SetForbidden, account limit,
// route, method, body, MPC, member.
//
// List MPCs takes the documented filters: friendly_name, status
// (initialized, active or ended, any case), termination_cause_code, and
// creation_time__ and end_time__ gt, gte, lt, lte in Plivo's format
// (YYYY-MM-DD HH:MM[:ss[.uuuuuu]], UTC; 400 otherwise), with the 30-day
// window when only one side of an end_time range is given; limit 1–20 and
// offset >= 0 (400 otherwise). meta.next and meta.previous carry the
// filters. sub_account and unknown parameters are ignored.
//
// Not simulated: Add Participant over HTTP (501; use AddParticipant),
// recordings, play/speak, and the asynchronous callback_url variant
// (refused with 400 so a test never mistakes it for the synchronous API).
//
// The package does not import testing, so the mpcbot demo console can run
// it.
package plivotest
