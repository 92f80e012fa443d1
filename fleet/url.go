package fleet

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ParseURL parses REDIS_URL: redis:// or rediss:// (TLS), with an optional
// user and password and an optional /db, as go-redis reads them. Errors name
// REDIS_URL and never contain the credentials (nor the rest of the URL:
// url.Parse quotes its input).
func ParseURL(raw string) (*redis.Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		detail := ""
		var uerr *url.Error
		if errors.As(err, &uerr) {
			detail = ": " + uerr.Err.Error()
		}
		return nil, fmt.Errorf("REDIS_URL is not a valid URL%s", redact(detail, raw))
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("REDIS_URL: scheme %q is not supported (use redis:// or rediss://)", redact(u.Scheme, raw))
	}
	if u.Host == "" {
		return nil, errors.New("REDIS_URL: no host (expected redis://[user:password@]host[:port][/db])")
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %s", redact(err.Error(), raw))
	}
	// url.Parse reads only the part after the last ':' as the port, so a
	// host such as "cache:port:6379" parses, and would never connect.
	// go-redis would bracket "cache:port" as an IPv6 host, and take an
	// empty host for localhost.
	host := u.Hostname()
	if host == "" || (strings.Contains(host, ":") && net.ParseIP(host) == nil) {
		return nil, fmt.Errorf("REDIS_URL: host %q is not host[:port] (a name or IP, then an optional numeric port)", redact(u.Host, raw))
	}
	_, port, err := net.SplitHostPort(opts.Addr)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("REDIS_URL: port %q is not a number from 1 to 65535", redact(port, raw))
	}
	return opts, nil
}

// Secrets returns what must never be logged from the REDIS_URL raw: its
// password, as written and decoded, also when raw does not parse. A logger
// that redacts these strings can safely log errors about Redis.
func Secrets(raw string) []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
		}
	}
	// As written, found by hand so that an unparseable URL is covered too:
	// between "://" and the last "@", after the first ":".
	rest := raw
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		userinfo := rest[:at]
		if colon := strings.Index(userinfo, ":"); colon >= 0 {
			written := userinfo[colon+1:]
			add(written)
			if decoded, err := url.PathUnescape(written); err == nil {
				add(decoded)
			}
		}
	}
	return out
}

// redact returns s, or a placeholder when s contains a secret of raw.
func redact(s, raw string) string {
	for _, secret := range Secrets(raw) {
		if strings.Contains(s, secret) {
			return "(details withheld: they contain the password)"
		}
	}
	return s
}
