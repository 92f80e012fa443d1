// Package plivo is mpcbot's client for Plivo's Multiparty Call (MPC) REST API:
// URL building, HTTP basic auth, JSON encoding, one rate limiter (a Limiter,
// shared by the fleet or in-process) that gates every attempt, retries with
// backoff, reading the state back before resending an update whose answer
// was lost, typed errors, and bounded, redacted excerpts of everything taken
// from Plivo's answers.
//
// It knows nothing of Slack or of the /mpc grammar. The domain types in this
// file (MPC, Member, ParticipantUpdate, UpdateResult, Participant) are what
// the rest of mpcbot talks in; their constructors validate, so a value of one
// of these types is always safe to put in a request path.
package plivo

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameLength is the longest MPC friendly name, in bytes, that mpcbot sends.
// Plivo documents no limit; names longer than this are almost certainly typos
// or hostile input, and a bound keeps button values and messages small.
const MaxNameLength = 128

// MPC identifies one multiparty call, either by its friendly name (only
// ongoing calls can be found that way) or by its UUID. The zero value is not
// a valid MPC; use MPCByName or MPCByUUID.
type MPC struct {
	name string
	uuid string
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// MPCByName returns a reference to the live MPC with the given friendly name.
// The name may contain spaces and non-ASCII letters; it is percent-encoded as
// a single path segment. Names that could change the meaning of the request
// URL ('/', '\\', '?', '#', '%', "..") or that contain control or invisible
// formatting characters are refused.
func MPCByName(name string) (MPC, error) {
	if err := validateName(name); err != nil {
		return MPC{}, err
	}
	return MPC{name: name}, nil
}

// MPCByUUID returns a reference to an MPC by its UUID (8-4-4-4-12 hex digits).
func MPCByUUID(uuid string) (MPC, error) {
	if !uuidPattern.MatchString(uuid) {
		return MPC{}, &Error{Op: "mpc uuid", Kind: Invalid,
			Message: fmt.Sprintf("%q is not an MPC UUID (expected 8-4-4-4-12 hex digits)", cut(uuid, 40))}
	}
	return MPC{uuid: strings.ToLower(uuid)}, nil
}

func validateName(name string) error {
	invalid := func(why string) error {
		return &Error{Op: "mpc name", Kind: Invalid, Message: "MPC name " + why}
	}
	switch {
	case name == "":
		return invalid("is empty")
	case len(name) > MaxNameLength:
		return invalid(fmt.Sprintf("is longer than %d bytes", MaxNameLength))
	case !utf8.ValidString(name):
		return invalid("is not valid UTF-8")
	case strings.TrimSpace(name) != name:
		return invalid("starts or ends with a space")
	case strings.Contains(name, ".."):
		return invalid(`contains ".."`)
	}
	for _, r := range name {
		switch {
		case strings.ContainsRune(`/\?#%`, r):
			return invalid(fmt.Sprintf("contains %q, which is not allowed", r))
		case r == ' ':
			// Plain spaces are fine ("mpc 1000" is a real name).
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), unicode.IsSpace(r):
			return invalid(fmt.Sprintf("contains the invisible character U+%04X", r))
		}
	}
	return nil
}

// Name returns the friendly name, or "" for an MPC referenced by UUID.
func (m MPC) Name() string { return m.name }

// UUID returns the UUID, or "" for an MPC referenced by name.
func (m MPC) UUID() string { return m.uuid }

// IsZero reports whether m is the zero value (no MPC).
func (m MPC) IsZero() bool { return m.name == "" && m.uuid == "" }

// PathSegment returns the MPC as it appears in a Plivo URL path:
// "name_<escaped name>" or "uuid_<uuid>".
func (m MPC) PathSegment() string {
	if m.uuid != "" {
		return "uuid_" + m.uuid
	}
	return "name_" + url.PathEscape(m.name)
}

// String returns the MPC as a user would type it: the bare name, or
// "uuid:<uuid>".
func (m MPC) String() string {
	if m.uuid != "" {
		return "uuid:" + m.uuid
	}
	return m.name
}

// Member is a participant selector in an MPC: a member id (a string of
// digits, e.g. "209") or AllMembers. The zero value is not valid; use
// ParseMember.
type Member string

// AllMembers selects every participant of an MPC.
const AllMembers Member = "all"

// MaxMemberIDLength bounds member ids; Plivo's are short decimal numbers.
const MaxMemberIDLength = 20

// ParseMember validates s as "all" (any case) or a member id of digits.
func ParseMember(s string) (Member, error) {
	if strings.EqualFold(s, string(AllMembers)) {
		return AllMembers, nil
	}
	if s == "" || len(s) > MaxMemberIDLength {
		return "", &Error{Op: "member", Kind: Invalid,
			Message: fmt.Sprintf("%q is not a member id (expected `all` or up to %d digits)", cut(s, MaxMemberIDLength), MaxMemberIDLength)}
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", &Error{Op: "member", Kind: Invalid,
				Message: fmt.Sprintf("%q is not a member id (expected `all` or digits)", s)}
		}
	}
	return Member(s), nil
}

// IsAll reports whether m selects every participant.
func (m Member) IsAll() bool { return m == AllMembers }

// Field is one participant state field that Update Participant can change.
type Field string

// The fields of Update Participant, named as in the JSON body and response.
const (
	FieldMute      Field = "mute"
	FieldHold      Field = "hold"
	FieldCoachMode Field = "coach_mode"
)

// Fields lists every field in the order results are shown.
var Fields = []Field{FieldMute, FieldHold, FieldCoachMode}

// ParticipantUpdate is the body of an Update Participant request. Only the
// non-nil fields are sent, and the response carries a result for exactly
// those fields.
type ParticipantUpdate struct {
	Mute      *bool `json:"mute,omitempty"`
	Hold      *bool `json:"hold,omitempty"`
	CoachMode *bool `json:"coach_mode,omitempty"`
}

// Get returns the requested value of field f and whether it is set.
func (u ParticipantUpdate) Get(f Field) (value, ok bool) {
	var p *bool
	switch f {
	case FieldMute:
		p = u.Mute
	case FieldHold:
		p = u.Hold
	case FieldCoachMode:
		p = u.CoachMode
	}
	if p == nil {
		return false, false
	}
	return *p, true
}

// Set returns a copy of u with field f set to v.
func (u ParticipantUpdate) Set(f Field, v bool) ParticipantUpdate {
	switch f {
	case FieldMute:
		u.Mute = &v
	case FieldHold:
		u.Hold = &v
	case FieldCoachMode:
		u.CoachMode = &v
	}
	return u
}

// Fields returns the fields the update sets, in display order.
func (u ParticipantUpdate) Fields() []Field {
	var fs []Field
	for _, f := range Fields {
		if _, ok := u.Get(f); ok {
			fs = append(fs, f)
		}
	}
	return fs
}

// Validate checks the rules Plivo enforces (or leaves undocumented) before a
// request is sent: at least one field, and no coach_mode change for all
// members ("Updating coach_mode is permitted only when invoking the API on a
// specific participant's member ID").
func (u ParticipantUpdate) Validate(m Member) error {
	if len(u.Fields()) == 0 {
		return &Error{Op: "update participant", Kind: Invalid, Message: "nothing to update: set at least one of mute, hold or coach_mode"}
	}
	if u.CoachMode != nil && m.IsAll() {
		return &Error{Op: "update participant", Kind: Invalid, Message: CoachAllRule}
	}
	return nil
}

// CoachAllRule is Plivo's documented rule for coach_mode, quoted to users
// whose request breaks it.
const CoachAllRule = "coach_mode can be updated only for a specific member_id: Plivo answers 400 Bad Request when it is changed for all participants"

// UpdateResult is Plivo's answer to a successful Update Participant: its
// api_id and, for each field sent, Plivo's own result string (shown
// verbatim, never parsed: Plivo has spelled it both "succeeded" and
// "succeded").
type UpdateResult struct {
	APIID   string
	Status  int
	Results map[Field]string
	// Confirmed is set when Plivo's answer was lost (5xx, timeout) and the
	// new state was confirmed by reading it back instead of resending the
	// update; Results then hold mpcbot's explanation, not Plivo's strings.
	Confirmed bool
}

// Participant is one entry of an MPC's participant list: one per join, so a
// caller who left and came back appears twice. Exited entries have ExitTime
// set and nil Mute, Hold and CoachMode.
//
// The client bounds its strings and removes control and format characters
// from them (MemberID to MaxMemberIDLength runes, Role to 32, the others to
// 256), so that odd data from Plivo cannot reach users whole; use Member to
// act on one.
type Participant struct {
	MemberID      string  `json:"member_id"`
	Role          string  `json:"role"`
	CallUUID      string  `json:"call_uuid"`
	MPCUUID       string  `json:"mpc_uuid"`
	Mute          *bool   `json:"mute"`
	Hold          *bool   `json:"hold"`
	CoachMode     *bool   `json:"coach_mode"`
	JoinTime      *string `json:"join_time"`
	ExitTime      *string `json:"exit_time"`
	ExitCause     *string `json:"exit_cause"`
	MemberAddress string  `json:"member_address,omitempty"`
	ResourceURI   string  `json:"resource_uri"`
}

// Live reports whether the participant is still in the call.
func (p Participant) Live() bool { return p.ExitTime == nil && p.Mute != nil }

// IsSupervisor reports whether the participant's role is Supervisor (Plivo
// documents "Supervisor" but returns "supervisor"; compared case-insensitively).
func (p Participant) IsSupervisor() bool { return strings.EqualFold(p.Role, "supervisor") }

// Member returns the participant's member id as a Member to act on, or an
// Invalid error when Plivo's member_id is not one (not digits, or longer
// than MaxMemberIDLength: the client cuts those, ending them in "…", so
// they can be shown but never acted on).
func (p Participant) Member() (Member, error) {
	m, err := ParseMember(p.MemberID)
	if err == nil && m.IsAll() {
		return "", &Error{Op: "member", Kind: Invalid, Message: "Plivo's member_id \"all\" is not a member id"}
	}
	return m, err
}

// state returns the participant's value of field f (nil once it has left).
func (p Participant) state(f Field) *bool {
	switch f {
	case FieldMute:
		return p.Mute
	case FieldHold:
		return p.Hold
	case FieldCoachMode:
		return p.CoachMode
	}
	return nil
}
