package plivo_test

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/mpcbot/mpcbot/plivo"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// A token with characters that percent-encoding and JSON change, so that
// every form SecretForms lists differs from the raw token.
const oddToken = "tok/en+with=odd&chars<>%2F-0123456789"

// lockedBuffer is a bytes.Buffer safe for concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// No form of the credentials reaches an error, a result or a log line, even
// when Plivo (or a proxy in front of it) echoes the request's headers and
// URL in its error bodies.
func TestSimSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	const authID = "MAODDODDODDODDODD000"
	secrets := plivo.SecretForms(authID, oddToken)
	scenarios := []struct {
		name  string
		setup func(srv *plivotest.Server)
		token string // the client's token; "" = the server's
		mpc   string
	}{
		{"404", nil, "", "no such mpc"},
		{"401 with the wrong token", nil, "wrong/" + oddToken, plivotest.SampleMPCName},
		{"403", func(srv *plivotest.Server) { srv.SetForbidden("geo permissions") }, "", plivotest.SampleMPCName},
		{"5xx until the deadline", func(srv *plivotest.Server) {
			srv.FailNext(100, plivotest.Fault{Status: 503})
		}, "", plivotest.SampleMPCName},
	}
	for _, echo := range []plivotest.EchoMode{plivotest.EchoInText, plivotest.EchoNested} {
		for _, sc := range scenarios {
			t.Run(map[plivotest.EchoMode]string{plivotest.EchoInText: "in text/", plivotest.EchoNested: "nested/"}[echo]+sc.name, func(t *testing.T) {
				t.Parallel()
				srv := plivotest.NewServer(plivotest.WithSampleMPC(), plivotest.WithCredentials(authID, oddToken))
				t.Cleanup(srv.Close)
				srv.SetEchoHeaders(echo)
				if sc.setup != nil {
					sc.setup(srv)
				}
				token := cmpOr(sc.token, oddToken)
				var logs lockedBuffer
				c, err := plivo.New(plivo.Config{AuthID: authID, AuthToken: token, BaseURL: srv.URL,
					Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
				if err != nil {
					t.Fatal(err)
				}
				plivo.InstantWaits(c)
				clientSecrets := plivo.SecretForms(authID, token)
				_, err = c.UpdateParticipant(simCtx(t), byName(t, sc.mpc), "101", plivo.ParticipantUpdate{Mute: ptr(true)})
				e, ok := plivo.AsError(err)
				if !ok {
					t.Fatalf("error %v, want a *plivo.Error", err)
				}
				// The echo did reach the client: the bodies carry the secrets.
				if echo == plivotest.EchoInText && !strings.Contains(e.Message, "Authorization: Basic [redacted]") {
					t.Errorf("message %q: want the echoed header, redacted", e.Message)
				}
				for _, text := range []string{err.Error(), e.Message, e.APIID, logs.String()} {
					for _, s := range slices.Concat(secrets, clientSecrets) {
						if strings.Contains(text, s) {
							t.Errorf("%q leaks a secret form %q", text, s)
						}
					}
				}
			})
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// 403 is Forbidden with Plivo's reason, and leaves the credentials
// accepted; 401 bodies in every real shape give Unauthorized with their text.
func TestSimForbiddenAndUnauthorizedShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		setup     func(srv *plivotest.Server)
		wrong     bool
		wantKind  plivo.Kind
		wantMsg   string
		wantAPIID bool
		wantCreds plivo.CredentialState
	}{
		{"403 geo permissions", func(srv *plivotest.Server) {
			srv.SetForbidden("calls to this destination are blocked by geo permissions")
		},
			false, plivo.Forbidden, "calls to this destination are blocked by geo permissions", true, plivo.CredentialsAccepted},
		{"401 Plivo-shaped", nil, true, plivo.Unauthorized, plivotest.ErrTextBadCredentials, true, plivo.CredentialsRejected},
		{"401 without api_id", func(srv *plivotest.Server) { srv.SetAuthErrorShape(plivotest.AuthErrorNoAPIID) },
			true, plivo.Unauthorized, plivotest.ErrTextBadCredentials, false, plivo.CredentialsRejected},
		{"401 as a plain string", func(srv *plivotest.Server) { srv.SetAuthErrorShape(plivotest.AuthErrorString) },
			true, plivo.Unauthorized, plivotest.ErrTextBadCredentials, false, plivo.CredentialsRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := plivotest.NewServer(plivotest.WithSampleMPC())
			t.Cleanup(srv.Close)
			token := srv.AuthToken
			if tt.wrong {
				token = "not-the-token"
			}
			c, err := plivo.New(plivo.Config{AuthID: srv.AuthID, AuthToken: token, BaseURL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			mpc := byName(t, plivotest.SampleMPCName)
			if !tt.wrong {
				if _, err := c.ListParticipants(simCtx(t), mpc); err != nil {
					t.Fatal(err)
				}
			}
			if tt.setup != nil {
				tt.setup(srv)
			}
			_, err = c.UpdateParticipant(simCtx(t), mpc, "101", plivo.ParticipantUpdate{Mute: ptr(true)})
			e, ok := plivo.AsError(err)
			if !ok || e.Kind != tt.wantKind || e.Message != tt.wantMsg || (e.APIID != "") != tt.wantAPIID || e.Attempts != 1 {
				t.Fatalf("error %+v, want %v %q (api_id %v) after 1 attempt", e, tt.wantKind, tt.wantMsg, tt.wantAPIID)
			}
			if got := c.Credentials(); got != tt.wantCreds {
				t.Errorf("credentials %v, want %v", got, tt.wantCreds)
			}
			if n := len(srv.AppliedUpdates()); n != 0 {
				t.Errorf("%d updates applied", n)
			}
		})
	}
}

// printableLine reports whether s has no control or format characters.
func printableLine(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
	})
}

// Oversized and odd data from Plivo never reaches a caller whole: api_id,
// result strings, error texts and participant fields are bounded,
// printable excerpts; a member_id that is not one cannot be acted on.
func TestSimOversizedData(t *testing.T) {
	t.Parallel()
	c, srv, _ := newSimClient(t)
	srv.SetOversized(60_000)
	huge := strings.Repeat("9", 60_000)
	if err := srv.AddParticipantWithID(plivotest.SampleMPCName, plivotest.RoleAgent, huge); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddParticipantWithID(plivotest.SampleMPCName, plivotest.RoleAgent, "12a\u202e"); err != nil {
		t.Fatal(err)
	}
	mpc := byName(t, plivotest.SampleMPCName)
	check := func(what, s string, max int) {
		t.Helper()
		if n := utf8.RuneCountInString(s); n > max+1 || !printableLine(s) {
			t.Errorf("%s: %d runes (max %d+1), printable %v: %.80q…", what, n, max, printableLine(s), s)
		}
	}

	res, err := c.UpdateParticipant(simCtx(t), mpc, "101", plivo.ParticipantUpdate{Mute: ptr(true), Hold: ptr(true)})
	if err != nil {
		t.Fatalf("UpdateParticipant: %v", err)
	}
	check("api_id", res.APIID, 64)
	for f, s := range res.Results {
		check(string(f), s, 300)
		if !strings.HasPrefix(s, "MPC: test_mpc_1") {
			t.Errorf("%s result %.60q does not start with Plivo's text", f, s)
		}
	}

	_, err = c.UpdateParticipant(simCtx(t), mpc, "999999", plivo.ParticipantUpdate{Mute: ptr(true)})
	e, ok := plivo.AsError(err)
	if !ok || e.Kind != plivo.NotFound {
		t.Fatalf("error %v, want NotFound", err)
	}
	check("error message", e.Message, 300)
	check("error api_id", e.APIID, 64)
	check("Error()", err.Error(), 600)

	ps, err := c.ListParticipants(simCtx(t), mpc)
	if err != nil {
		t.Fatal(err)
	}
	odd := 0
	for _, p := range ps {
		check("member_id", p.MemberID, plivo.MaxMemberIDLength)
		check("role", p.Role, 32)
		if _, err := p.Member(); err != nil {
			odd++
			if plivo.KindOf(err) != plivo.Invalid {
				t.Errorf("Member() of %.30q: %v, want Invalid", p.MemberID, err)
			}
			if _, err := c.UpdateParticipant(simCtx(t), mpc, plivo.Member(p.MemberID), plivo.ParticipantUpdate{Mute: ptr(true)}); plivo.KindOf(err) != plivo.Invalid {
				t.Errorf("update of %.30q: %v, want Invalid before sending", p.MemberID, err)
			}
		}
	}
	if odd != 2 {
		t.Errorf("%d participants with an odd member_id, want 2", odd)
	}
	if len(srv.AppliedUpdates()) != 1 {
		t.Errorf("%d updates applied, want 1", len(srv.AppliedUpdates()))
	}
}
