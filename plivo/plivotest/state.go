package plivotest

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Roles of MPC participants as Plivo returns them (lower-case).
const (
	RoleAgent      = "agent"
	RoleSupervisor = "supervisor"
	RoleCustomer   = "customer"
)

// Exit causes Plivo reports for participants who left an MPC.
const (
	ExitHangup = "Participant Call Hangup"
	ExitKicked = "Kicked Out of Multiparty Call"
	ExitEnded  = "Multiparty Call Ended"
)

// SampleMPCName is the friendly name of the MPC created by WithSampleMPC
// (the name used in Plivo's documentation examples).
const SampleMPCName = "test_mpc_1"

// firstMemberID is the first member id the server hands out.
const firstMemberID = 101

// timeLayout is Plivo's timestamp format, always in UTC.
const timeLayout = "2006-01-02 15:04:05+00:00"

// mpc is one multiparty call: initialized (waiting for a participant with
// start_mpc_on_enter, or for Activate MPC), active, or ended.
type mpc struct {
	name        string
	uuid        string
	created     time.Time
	noCreated   bool // creation_time null
	initialized bool // not started yet
	started     time.Time
	noStart     bool // start_time null (initialized, or ended without starting)
	stayAlone   bool
	ended       bool
	endTime     time.Time
	cause       string                  // termination_cause once ended
	code        int                     // termination_cause_code once ended
	members     []*participant          // one entry per join, in join order
	byMember    map[string]*participant // latest entry per member id
}

// start makes an initialized MPC active at now.
func (m *mpc) start(now time.Time) {
	if m.initialized {
		m.initialized = false
		m.started, m.noStart = now, false
	}
}

// participant is one join of one call leg to an MPC.
type participant struct {
	memberID     string
	role         string
	callUUID     string
	joined       time.Time
	startOnEnter bool
	exited       bool
	exitTime     time.Time
	exitCause    string
	mute         bool
	hold         bool
	coachMode    bool
}

func (p *participant) exit(now time.Time, cause string) {
	if p.exited {
		return
	}
	p.exited = true
	p.exitTime = now
	p.exitCause = cause
	p.mute, p.hold, p.coachMode = false, false, false
}

func (p *participant) state() ParticipantState {
	return ParticipantState{
		MemberID:  p.memberID,
		Role:      p.role,
		Live:      !p.exited,
		Mute:      p.mute,
		Hold:      p.hold,
		CoachMode: p.coachMode,
	}
}

// MPCInfo identifies an MPC created on the server.
type MPCInfo struct {
	// Name is the friendly name.
	Name string
	// UUID is the mpc_uuid (lower-case 8-4-4-4-12 hex).
	UUID string
}

// ParticipantState is the state of one participant entry as the simulator
// holds it. For an entry whose participant has left, Live is false and Mute,
// Hold and CoachMode are false (Plivo reports them as null).
type ParticipantState struct {
	MemberID  string
	Role      string // "agent", "supervisor" or "customer"
	Live      bool
	Mute      bool
	Hold      bool
	CoachMode bool
}

// AddMPC creates a live MPC with the given friendly name and returns its
// name and UUID. Friendly names are unique among live MPCs, so if a live MPC
// of that name exists it is returned unchanged. An empty name creates
// nothing and returns the zero MPCInfo.
func (s *Server) AddMPC(name string) MPCInfo {
	if name == "" {
		return MPCInfo{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.addMPCLocked(name)
	return MPCInfo{Name: m.name, UUID: m.uuid}
}

func (s *Server) addMPCLocked(name string) *mpc {
	if m, ok := s.liveByName[name]; ok {
		return m
	}
	now := s.now()
	m := &mpc{name: name, uuid: newUUID(), created: now, started: now, byMember: make(map[string]*participant)}
	s.insertLocked(m)
	return m
}

// insertLocked adds a new MPC to the server's indexes.
func (s *Server) insertLocked(m *mpc) {
	s.mpcs = append(s.mpcs, m)
	s.byUUID[m.uuid] = m
	if !m.ended {
		s.liveByName[m.name] = m
	}
}

// MPC returns the MPC with the given friendly name: the live one if there is
// one, else the most recently created ended one.
func (s *Server) MPC(name string) (MPCInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.findByNameLocked(name)
	if m == nil {
		return MPCInfo{}, false
	}
	return MPCInfo{Name: m.name, UUID: m.uuid}, true
}

// findByNameLocked resolves a friendly name for the setup and state API: the
// live MPC, else the newest ended MPC of that name, else nil.
func (s *Server) findByNameLocked(name string) *mpc {
	if m, ok := s.liveByName[name]; ok {
		return m
	}
	for i := len(s.mpcs) - 1; i >= 0; i-- {
		if s.mpcs[i].name == name {
			return s.mpcs[i]
		}
	}
	return nil
}

// AddParticipant adds a live participant with the given role ("agent",
// "supervisor" or "customer", any case) to the live MPC mpcName, creating
// the MPC if no live one has that name (as Plivo's Add Participant does),
// and returns the new member id: a digit string unique on this server
// (101, 102, …). The participant starts with mute and hold false and
// coach_mode true for supervisors (Plivo's default), false for others, and
// start_mpc_on_enter true: an initialized MPC becomes active.
// For an unknown role or an empty MPC name it adds nothing and returns "".
// Plivo's max_participants (10 live) is not enforced here, so tests can
// build any shape.
func (s *Server) AddParticipant(mpcName, role string) string {
	return s.addParticipant(mpcName, role, "", true)
}

// AddWaitingParticipant is AddParticipant with start_mpc_on_enter false:
// when no live MPC has the name, the MPC is created in the initialized
// state (status "Initialized", start_time null) and stays so until a
// participant with start_mpc_on_enter joins (AddParticipant) or it is
// activated (ActivateMPC, or Activate MPC over HTTP).
func (s *Server) AddWaitingParticipant(mpcName, role string) string {
	return s.addParticipant(mpcName, role, "", false)
}

// addParticipant adds a participant with the given member id ("" for the
// next number); it returns "" when nothing was added.
func (s *Server) addParticipant(mpcName, role, memberID string, startOnEnter bool) string {
	role = strings.ToLower(role)
	switch role {
	case RoleAgent, RoleSupervisor, RoleCustomer:
	default:
		return ""
	}
	if mpcName == "" {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	m, live := s.liveByName[mpcName]
	if !live {
		m = s.addMPCLocked(mpcName)
		if !startOnEnter {
			m.initialized, m.started, m.noStart = true, time.Time{}, true
		}
	}
	if memberID == "" {
		memberID = strconv.Itoa(s.nextMember)
		s.nextMember++
	} else if _, taken := m.byMember[memberID]; taken {
		return ""
	}
	if startOnEnter {
		m.start(now)
	}
	p := &participant{
		memberID:     memberID,
		role:         role,
		callUUID:     newUUID(),
		joined:       now,
		startOnEnter: startOnEnter,
		coachMode:    role == RoleSupervisor,
	}
	m.members = append(m.members, p)
	m.byMember[p.memberID] = p
	return p.memberID
}

// RemoveParticipant makes the participant leave the MPC (hang up): its entry
// stays in the participant list with exit_time and exit_cause set and
// mute/hold/coach_mode null. Unknown MPCs or members, and members who have
// already left, are ignored. The MPC stays live even when nobody is left, so
// tests can shape the participant list freely; use EndMPC to end it.
func (s *Server) RemoveParticipant(mpcName, memberID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.findByNameLocked(mpcName)
	if m == nil {
		return
	}
	if p, ok := m.byMember[memberID]; ok {
		p.exit(s.now(), ExitHangup)
	}
}

// EndMPC ends the live MPC with the given friendly name, as Plivo's End MPC
// API does: every live participant exits with cause "Multiparty Call
// Ended", the status becomes "Ended" (termination_cause "Hangup API
// Triggered", code 3000) and the MPC can then be found only by its UUID. An
// unknown name is ignored.
func (s *Server) EndMPC(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.liveByName[name]; ok {
		s.endLocked(m)
	}
}

func (s *Server) endLocked(m *mpc) {
	if m.ended {
		return
	}
	now := s.now()
	for _, p := range m.members {
		p.exit(now, ExitEnded)
	}
	m.ended = true
	m.endTime = now
	m.cause, m.code = "Hangup API Triggered", 3000
	delete(s.liveByName, m.name)
}

// Participant returns the state of the latest entry for memberID in the MPC
// named mpcName (the live MPC of that name, else the newest ended one).
func (s *Server) Participant(mpcName, memberID string) (ParticipantState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.findByNameLocked(mpcName)
	if m == nil {
		return ParticipantState{}, false
	}
	p, ok := m.byMember[memberID]
	if !ok {
		return ParticipantState{}, false
	}
	return p.state(), true
}

// Participants returns every participant entry of the MPC named mpcName (the
// live MPC of that name, else the newest ended one), one per join, in join
// order (oldest first). It returns nil for an unknown MPC.
func (s *Server) Participants(mpcName string) []ParticipantState {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.findByNameLocked(mpcName)
	if m == nil {
		return nil
	}
	out := make([]ParticipantState, len(m.members))
	for i, p := range m.members {
		out[i] = p.state()
	}
	return out
}

// newUUID returns a random version-4 UUID in lower-case 8-4-4-4-12 form.
// math/rand is enough: these ids only need to be unique, not secret.
func newUUID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}
