package redistest

import (
	"strings"
	"testing"
)

func TestStartKillRestartClose(t *testing.T) {
	t.Parallel()
	for _, password := range []string{"", "s3cret-pass"} {
		s, err := Start(Options{Password: password})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ping(); err != nil {
			t.Fatalf("after Start: %v", err)
		}
		if got := s.URL(); !strings.HasPrefix(got, "redis://") || !strings.Contains(got, s.Addr()) || (password != "" && !strings.Contains(got, password)) {
			t.Fatalf("URL() = %q", got)
		}
		addr := s.Addr()
		if err := s.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := s.ping(); err == nil {
			t.Fatal("PING answered after Kill")
		}
		if err := s.Restart(); err != nil {
			t.Fatal(err)
		}
		if s.Addr() != addr {
			t.Fatalf("Restart moved the server from %s to %s", addr, s.Addr())
		}
		if err := s.ping(); err != nil {
			t.Fatalf("after Restart: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.ping(); err == nil {
			t.Fatal("PING answered after Close")
		}
	}
}

func TestMissingBinaryNamesTheFix(t *testing.T) {
	t.Parallel()
	_, err := Start(Options{Binary: "redis-server-that-does-not-exist"})
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y redis-server") {
		t.Fatalf("Start with a missing binary: %v, want advice to install redis-server", err)
	}
}
