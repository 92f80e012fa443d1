package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// pprofEnv names the listen address of the profiling endpoint in a bot
// built with -pprof. The bot's own source has no such knob: the load
// program adds it at build time (go build -overlay), so only the binary it
// builds for profiling can serve profiles, and on loopback only.
const pprofEnv = "MPCBOT_PPROF"

// pprofSource is the file the overlay adds to package main of cmd/mpcbot.
// net/http/pprof registers on http.DefaultServeMux, which the bot's health
// server does not use: the profiles are only on this listener.
const pprofSource = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

// Added by cmd/mpcbot-load -pprof (go build -overlay); not in the repository.
func init() {
	if addr := os.Getenv("` + pprofEnv + `"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
`

// pprofOverlay writes the profiling file and a go build -overlay
// description that adds it to cmd/mpcbot, and returns the description's
// path.
func pprofOverlay(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-f", "{{.Dir}}", "github.com/mpcbot/mpcbot/cmd/mpcbot").Output()
	if err != nil {
		return "", fmt.Errorf("locating cmd/mpcbot for the pprof overlay: %w", err)
	}
	pkgDir := strings.TrimSpace(string(out))
	src := filepath.Join(dir, "zz_load_pprof.go")
	if err := os.WriteFile(src, []byte(pprofSource), 0o644); err != nil {
		return "", fmt.Errorf("writing the pprof overlay: %w", err)
	}
	overlay, err := json.Marshal(map[string]map[string]string{
		"Replace": {filepath.Join(pkgDir, "zz_load_pprof.go"): src},
	})
	if err != nil {
		return "", fmt.Errorf("encoding the pprof overlay: %w", err)
	}
	path := filepath.Join(dir, "pprof-overlay.json")
	if err := os.WriteFile(path, overlay, 0o644); err != nil {
		return "", fmt.Errorf("writing the pprof overlay: %w", err)
	}
	return path, nil
}

// profiles fetches, from a bot built with -pprof, a CPU profile of d into
// base+".cpu.pprof" and, in the middle of d, an execution trace of a
// second into base+".trace" (go tool trace: where goroutines waited to
// run). Run it alongside the load it should profile.
func profiles(ctx context.Context, addr string, d time.Duration, base string) error {
	traced := make(chan error, 1)
	go func() {
		if !sleepCtx(ctx, d/2) {
			traced <- ctx.Err()
			return
		}
		traced <- fetchProfile(ctx, addr, "trace", time.Second, base+".trace")
	}()
	err := fetchProfile(ctx, addr, "profile", d, base+".cpu.pprof")
	return errors.Join(err, <-traced)
}

// fetchProfile fetches /debug/pprof/<kind>?seconds=… for d and writes it
// to path.
func fetchProfile(ctx context.Context, addr, kind string, d time.Duration, path string) error {
	secs := max(1, int((d+time.Second-1)/time.Second))
	url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", addr, kind, secs)
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("pprof %s: %w", kind, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("pprof %s: %w", kind, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof %s: %s", kind, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("pprof %s: %w", kind, err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("pprof %s: writing %s: %w", kind, path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pprof %s: writing %s: %w", kind, path, err)
	}
	return nil
}
