package plivotest

import (
	"fmt"
	"strconv"
	"time"
)

// page is the "meta" object of Plivo list responses.
type page struct {
	Count    int     `json:"count"`
	Limit    int     `json:"limit"`
	Next     *string `json:"next"`
	Offset   int     `json:"offset"`
	Previous *string `json:"previous"`
}

// pageMeta builds meta for a list of count items; links are relative URLs
// like Plivo's ("/v1/Account/…/?limit=20&offset=20"), carrying extra (an
// encoded filter query, "" for none).
func pageMeta(base string, count, limit, offset int, extra string) page {
	link := func(off int) *string {
		l := base + "?limit=" + strconv.Itoa(limit) + "&offset=" + strconv.Itoa(off)
		if extra != "" {
			l += "&" + extra
		}
		return &l
	}
	p := page{Count: count, Limit: limit, Offset: offset}
	if offset+limit < count {
		p.Next = link(offset + limit)
	}
	if offset > 0 {
		p.Previous = link(max(offset-limit, 0))
	}
	return p
}

func window[T any](items []T, limit, offset int) []T {
	if offset >= len(items) {
		return []T{}
	}
	return items[offset:min(offset+limit, len(items))]
}

// participantJSON is Plivo's participant object, keys as in the official
// fixtures.
type participantJSON struct {
	BilledAmount    *string `json:"billed_amount"`
	BilledDuration  *int    `json:"billed_duration"`
	CallUUID        string  `json:"call_uuid"`
	CoachMode       *bool   `json:"coach_mode"`
	Duration        *int    `json:"duration"`
	EndMPCOnExit    bool    `json:"end_mpc_on_exit"`
	ExitCause       *string `json:"exit_cause"`
	ExitTime        *string `json:"exit_time"`
	Hold            *bool   `json:"hold"`
	JoinTime        string  `json:"join_time"`
	MemberAddress   string  `json:"member_address"`
	MemberID        string  `json:"member_id"`
	MPCUUID         string  `json:"mpc_uuid"`
	Mute            *bool   `json:"mute"`
	ResourceURI     string  `json:"resource_uri"`
	Role            string  `json:"role"`
	StartMPCOnEnter bool    `json:"start_mpc_on_enter"`
}

// participantObject renders p; resource_uri echoes the {mpc} segment the
// request used, as Plivo's responses do.
func (s *Server) participantObject(m *mpc, p *participant, seg string) participantJSON {
	o := participantJSON{
		CallUUID:        p.callUUID,
		JoinTime:        formatTime(p.joined),
		MemberAddress:   "sip:plivotest" + p.memberID + "@phone.plivo.com",
		MemberID:        p.memberID,
		MPCUUID:         m.uuid,
		ResourceURI:     accountPrefix + s.AuthID + "/MultiPartyCall/" + seg + "/Participant/" + p.memberID + "/",
		Role:            p.role,
		StartMPCOnEnter: p.startOnEnter,
	}
	if p.exited {
		o.BilledAmount, o.BilledDuration, o.Duration = billing(p.joined, p.exitTime)
		o.ExitCause = ptr(p.exitCause)
		o.ExitTime = ptr(formatTime(p.exitTime))
	} else {
		o.Mute, o.Hold, o.CoachMode = ptr(p.mute), ptr(p.hold), ptr(p.coachMode)
	}
	return o
}

// mpcJSON is Plivo's MPC object, keys as in the official fixtures.
type mpcJSON struct {
	BilledAmount         *string `json:"billed_amount"`
	BilledDuration       *int    `json:"billed_duration"`
	CreationTime         *string `json:"creation_time"`
	Duration             *int    `json:"duration"`
	EndTime              *string `json:"end_time"`
	FriendlyName         string  `json:"friendly_name"`
	MPCUUID              string  `json:"mpc_uuid"`
	Participants         string  `json:"participants"`
	Recording            *string `json:"recording"`
	ResourceURI          string  `json:"resource_uri"`
	StartTime            *string `json:"start_time"`
	Status               string  `json:"status"`
	StayAlone            bool    `json:"stay_alone"`
	SubAccount           *string `json:"sub_account"`
	TerminationCause     *string `json:"termination_cause"`
	TerminationCauseCode *int    `json:"termination_cause_code"`
}

// MPC statuses as Plivo answers them (List MPCs filters on them in lower
// case, any case accepted).
const (
	StatusInitialized = "Initialized"
	StatusActive      = "Active"
	StatusEnded       = "Ended"
)

func mpcStatus(m *mpc) string {
	switch {
	case m.ended:
		return StatusEnded
	case m.initialized:
		return StatusInitialized
	}
	return StatusActive
}

// mpcObject renders m; resource_uri and participants echo the {mpc}
// segment the request used. Live MPCs are "not-recording"; ended ones
// report recording null, as in the fixtures. duration runs from start_time
// (creation_time when it never started) to end_time.
func (s *Server) mpcObject(m *mpc, seg string) mpcJSON {
	uri := accountPrefix + s.AuthID + "/MultiPartyCall/" + seg + "/"
	o := mpcJSON{
		FriendlyName: m.name,
		MPCUUID:      m.uuid,
		Participants: uri + "Participant/",
		ResourceURI:  uri,
		Status:       mpcStatus(m),
		StayAlone:    m.stayAlone,
	}
	if !m.noCreated {
		o.CreationTime = ptr(formatTime(m.created))
	}
	if !m.noStart {
		o.StartTime = ptr(formatTime(m.started))
	}
	if m.ended {
		from := m.started
		if m.noStart {
			from = m.created
		}
		o.BilledAmount, o.BilledDuration, o.Duration = billing(from, m.endTime)
		o.EndTime = ptr(formatTime(m.endTime))
		o.TerminationCause = ptr(m.cause)
		o.TerminationCauseCode = ptr(m.code)
	} else {
		o.Recording = ptr("not-recording")
	}
	return o
}

// billing returns billed_amount, billed_duration and duration for a leg
// from start to end: whole minutes (at least one) at 0.005 per minute.
func billing(start, end time.Time) (*string, *int, *int) {
	secs := max(int(end.Sub(start)/time.Second), 0)
	minutes := max((secs+59)/60, 1)
	amount := fmt.Sprintf("%.5f", float64(minutes)*0.005)
	return &amount, ptr(minutes * 60), &secs
}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func ptr[T any](v T) *T { return &v }
