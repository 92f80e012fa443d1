package plivotest

import (
	"net/http"
	"strings"
)

// routeKind is the shape of an API path below /v1/Account/{auth_id}/MultiPartyCall/.
type routeKind int

const (
	kindUnknown      routeKind = iota
	kindMPCs                   // P/
	kindMPC                    // P/{mpc}/
	kindParticipants           // P/{mpc}/Participant/
	kindParticipant            // P/{mpc}/Participant/{member}/
)

// route is a request path parsed without looking at any state.
type route struct {
	kind     routeKind
	op       string // "" when the method is not allowed or the path is unknown
	authID   string // the account id in the path, "" if the path has none
	mpcSeg   string // the {mpc} segment exactly as sent (still escaped)
	member   string // the {member} segment exactly as sent (still escaped)
	notFound string // why the path is unknown (404), "" if it is known
	allow    string // the Allow header for a 405
}

const accountPrefix = "/v1/Account/"

// parseRoute splits the escaped request path on '/' (so an encoded "%2F"
// stays inside its segment) and maps it and the method to an operation.
func parseRoute(escapedPath, method string) route {
	var rt route
	rest, ok := strings.CutPrefix(escapedPath, accountPrefix)
	if !ok {
		rt.notFound = "unknown path " + escapedPath
		return rt
	}
	segs := strings.Split(rest, "/")
	rt.authID = segs[0]
	trailingSlash := segs[len(segs)-1] == ""
	if trailingSlash {
		segs = segs[:len(segs)-1]
	}
	for _, seg := range segs {
		if seg == "" {
			rt.notFound = "unknown path " + escapedPath + " (empty path segment)"
			return rt
		}
	}
	if len(segs) < 2 || segs[1] != "MultiPartyCall" {
		rt.notFound = "unknown path " + escapedPath
		return rt
	}
	switch {
	case len(segs) == 2:
		rt.kind = kindMPCs
	case len(segs) == 3:
		rt.kind, rt.mpcSeg = kindMPC, segs[2]
	case len(segs) == 4 && segs[3] == "Participant":
		rt.kind, rt.mpcSeg = kindParticipants, segs[2]
	case len(segs) == 5 && segs[3] == "Participant":
		rt.kind, rt.mpcSeg, rt.member = kindParticipant, segs[2], segs[4]
	default:
		rt.notFound = "unknown path " + escapedPath
		return rt
	}
	if !trailingSlash {
		rt.notFound = "unknown path " + escapedPath + " (Plivo API paths end with '/')"
		return rt
	}
	ops := routeOps[rt.kind]
	rt.op = ops[method]
	if rt.op == "" {
		rt.allow = allowHeader(ops)
	}
	return rt
}

// routeOps maps each path shape and method to the Plivo operation.
var routeOps = map[routeKind]map[string]string{
	kindMPCs: {http.MethodGet: OpListMPCs},
	kindMPC: {
		http.MethodGet:    OpGetMPC,
		http.MethodPost:   OpActivateMPC,
		http.MethodDelete: OpEndMPC,
	},
	kindParticipants: {
		http.MethodGet:  OpListParticipants,
		http.MethodPost: OpAddParticipant,
	},
	kindParticipant: {
		http.MethodGet:    OpGetParticipant,
		http.MethodPost:   OpUpdateParticipant,
		http.MethodDelete: OpKickParticipant,
	},
}

func allowHeader(ops map[string]string) string {
	var methods []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		if ops[m] != "" {
			methods = append(methods, m)
		}
	}
	return strings.Join(methods, ", ")
}
