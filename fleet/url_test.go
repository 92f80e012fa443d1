package fleet

import (
	"slices"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw      string
		addr     string
		user     string
		password string
		db       int
		tls      bool
	}{
		{"redis://localhost:6379", "localhost:6379", "", "", 0, false},
		{"redis://redis.internal", "redis.internal:6379", "", "", 0, false},
		{"redis://:s3cret@10.0.0.5:6380/2", "10.0.0.5:6380", "", "s3cret", 2, false},
		{"rediss://bot:p%40ss@cache.example:6380/15", "cache.example:6380", "bot", "p@ss", 15, true},
		{"redis://[::1]:6390/1", "[::1]:6390", "", "", 1, false},
	}
	for _, tt := range tests {
		o, err := ParseURL(tt.raw)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tt.raw, err)
			continue
		}
		if o.Addr != tt.addr || o.Username != tt.user || o.Password != tt.password || o.DB != tt.db || (o.TLSConfig != nil) != tt.tls {
			t.Errorf("ParseURL(%q) = addr %s user %q password %q db %d tls %v", tt.raw, o.Addr, o.Username, o.Password, o.DB, o.TLSConfig != nil)
		}
	}
}

func TestParseURLErrorsNameTheVariableNotTheSecret(t *testing.T) {
	t.Parallel()
	tests := []struct{ raw, secret string }{
		{"", ""},
		{"localhost:6379", ""},
		{"http://:hunter2x@localhost:6379", "hunter2x"},
		{"unix:///run/redis.sock", ""},
		{"redis://:hunter2x@local host:6379", "hunter2x"},
		{"redis://:hun%zzter@localhost", "hun%zzter"},
		{"redis://:hunter2x@localhost:port", "hunter2x"},
		{"redis://:hunter2x@localhost/notadb", "hunter2x"},
		{"redis://:hunter2x@localhost/1/2", "hunter2x"},
		{"redis://:hunter2x@localhost?dial_timeout=soon", "hunter2x"},
		{"redis://:hunter2x@", "hunter2x"},
		{"redis://:hunter2x@localhost\x7f", "hunter2x"},
		{"redis://:hunter2x@cache:port:6379/0", "hunter2x"},
		{"redis://:hunter2x@cache:6379:6380", "hunter2x"},
		{"redis://:hunter2x@cache:0", "hunter2x"},
		{"redis://:hunter2x@cache:70000", "hunter2x"},
		{"redis://:hunter2x@:6379", "hunter2x"},
	}
	for _, tt := range tests {
		_, err := ParseURL(tt.raw)
		if err == nil {
			t.Errorf("ParseURL(%q) succeeded", tt.raw)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "REDIS_URL") {
			t.Errorf("ParseURL(%q) error %q does not name REDIS_URL", tt.raw, msg)
		}
		if tt.secret != "" && strings.Contains(msg, tt.secret) {
			t.Errorf("ParseURL(%q) error %q contains the password", tt.raw, msg)
		}
		if tt.secret != "" && !slices.Contains(Secrets(tt.raw), tt.secret) {
			t.Errorf("Secrets(%q) = %q, missing %q", tt.raw, Secrets(tt.raw), tt.secret)
		}
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw  string
		want []string
	}{
		{"redis://localhost:6379", nil},
		{"redis://user@localhost", nil},
		{"redis://:s3cret@localhost", []string{"s3cret"}},
		{"rediss://bot:p%40ss@host/1", []string{"p@ss", "p%40ss"}},
		{"redis://:p@ss@host", []string{"p@ss"}},
		{"not a url :secretish@ at all", []string{"secretish"}},
	}
	for _, tt := range tests {
		got := Secrets(tt.raw)
		slices.Sort(got)
		want := slices.Clone(tt.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("Secrets(%q) = %q, want %q", tt.raw, got, want)
		}
	}
}
