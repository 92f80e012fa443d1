package plivotest

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// MPCSpec describes an MPC for CreateMPC. Zero fields take the defaults
// given on each.
type MPCSpec struct {
	// Name is the friendly name (required). No live MPC (initialized or
	// active) may have it already: names are unique among live MPCs.
	Name string
	// UUID is the mpc_uuid, 8-4-4-4-12 hex digits not used on this server
	// (stored in lower case); "" makes a random one.
	UUID string
	// Status is StatusActive (the default), StatusInitialized or
	// StatusEnded, any case.
	Status string
	// Created is creation_time; zero means now. NoCreationTime answers
	// creation_time null, as some of Plivo's records do.
	Created        time.Time
	NoCreationTime bool
	// Started is start_time of an active or ended MPC; zero means Created.
	// NotStarted answers start_time null for an ended MPC that never
	// started. An initialized MPC always has start_time null.
	Started    time.Time
	NotStarted bool
	// Ended is end_time of an ended MPC; zero means now.
	Ended time.Time
	// TerminationCause and TerminationCauseCode of an ended MPC; the
	// defaults are "Hangup API Triggered" and 3000 (End MPC's).
	TerminationCause     string
	TerminationCauseCode int
	// StayAlone is stay_alone.
	StayAlone bool
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// CreateMPC creates an MPC without participants as spec describes — for
// List MPCs tests and demos, e.g. an ended call with a given uuid and
// times, or an initialized one. Add participants with AddParticipant (which
// activates an initialized MPC) or AddWaitingParticipant.
func (s *Server) CreateMPC(spec MPCSpec) (MPCInfo, error) {
	if spec.Name == "" {
		return MPCInfo{}, errors.New("plivotest: create MPC: the name is empty")
	}
	status := StatusActive
	switch strings.ToLower(spec.Status) {
	case "", "active":
	case "initialized":
		status = StatusInitialized
	case "ended":
		status = StatusEnded
	default:
		return MPCInfo{}, fmt.Errorf("plivotest: create MPC %q: unknown status %q", spec.Name, spec.Status)
	}
	id := strings.ToLower(spec.UUID)
	if id == "" {
		id = newUUID()
	}
	if !uuidRE.MatchString(id) {
		return MPCInfo{}, fmt.Errorf("plivotest: create MPC %q: %q is not a uuid", spec.Name, spec.UUID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.byUUID[id]; taken {
		return MPCInfo{}, fmt.Errorf("plivotest: create MPC %q: uuid %s is taken", spec.Name, id)
	}
	if _, live := s.liveByName[spec.Name]; live && status != StatusEnded {
		return MPCInfo{}, fmt.Errorf("plivotest: create MPC %q: a live MPC has that name", spec.Name)
	}
	now := s.now()
	m := &mpc{
		name: spec.Name, uuid: id, created: spec.Created, noCreated: spec.NoCreationTime,
		started: spec.Started, stayAlone: spec.StayAlone, byMember: make(map[string]*participant),
	}
	if m.created.IsZero() {
		m.created = now
	}
	if m.started.IsZero() {
		m.started = m.created
	}
	switch status {
	case StatusInitialized:
		m.initialized, m.started, m.noStart = true, time.Time{}, true
	case StatusEnded:
		m.ended, m.endTime, m.noStart = true, spec.Ended, spec.NotStarted
		if m.endTime.IsZero() {
			m.endTime = now
		}
		m.cause, m.code = spec.TerminationCause, spec.TerminationCauseCode
		if m.cause == "" {
			m.cause, m.code = "Hangup API Triggered", 3000
		}
	}
	s.insertLocked(m)
	return MPCInfo{Name: m.name, UUID: m.uuid}, nil
}

// ActivateMPC starts the initialized MPC with the given friendly name, as
// Activate MPC does, and reports whether there was one.
func (s *Server) ActivateMPC(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.liveByName[name]
	if !ok || !m.initialized {
		return false
	}
	m.start(s.now())
	return true
}

// AddParticipantWithID is AddParticipant with a given member id, which
// need not look like Plivo's (digits): for tests of odd data, such as a
// 60 000-character or non-numeric member_id. It fails for an unknown role,
// an empty name or member id, or a member id the MPC already has.
func (s *Server) AddParticipantWithID(mpcName, role, memberID string) error {
	if memberID == "" {
		return errors.New("plivotest: add participant: the member id is empty")
	}
	if s.addParticipant(mpcName, role, memberID, true) == "" {
		return fmt.Errorf("plivotest: add participant to %q: bad role %q, empty MPC name or member id taken", mpcName, role)
	}
	return nil
}

// WithSampleCalls sets up a small contact centre for demos of the live
// calls view: the sample MPC of WithSampleMPC (member ids 101–103, so the
// two options combine), two more active calls ("mpc 1000" — a name from
// Plivo's fixtures — and "billing-escalation"), an initialized call with
// a customer waiting ("onboarding-queue") and a call that ended a few
// minutes ago ("morning-huddle").
func WithSampleCalls() Option {
	return func(s *Server) { s.sample, s.sampleCalls = true, true }
}

// addSampleCalls creates the calls of WithSampleCalls after the sample MPC.
func (s *Server) addSampleCalls() {
	now := s.now()
	specs := []struct {
		spec  MPCSpec
		roles []string
	}{
		{MPCSpec{Name: "mpc 1000", Created: now.Add(-11 * time.Minute)}, []string{RoleCustomer, RoleAgent}},
		{MPCSpec{Name: "billing-escalation", Created: now.Add(-3 * time.Minute)}, []string{RoleCustomer, RoleAgent, RoleSupervisor}},
		{MPCSpec{Name: "onboarding-queue", Status: StatusInitialized, Created: now.Add(-time.Minute)}, nil},
		{MPCSpec{Name: "morning-huddle", Status: StatusEnded, Created: now.Add(-47 * time.Minute), Ended: now.Add(-6 * time.Minute),
			TerminationCause: "No Active Participants", TerminationCauseCode: 1000}, nil},
	}
	for _, sc := range specs {
		if _, err := s.CreateMPC(sc.spec); err != nil {
			continue // only a name clash with a test's own setup; the sample is best effort
		}
		for _, role := range sc.roles {
			s.AddParticipant(sc.spec.Name, role)
		}
	}
	s.AddWaitingParticipant("onboarding-queue", RoleCustomer)
}
