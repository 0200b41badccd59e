package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The value types of Config. Each UnmarshalText receives a value already
// trimmed and never empty (env skips empty values, and Load drops values
// that are only spaces), words its errors with the value quoted and without
// the variable's name (Load adds it), and leaves its receiver unchanged on
// error.

// itemErrors holds one error per bad item of a list, so that each becomes
// its own line.
type itemErrors []error

func (e itemErrors) Error() string { return errors.Join(e...).Error() }

// Unwrap gives the item errors to errors.Is and errors.As.
func (e itemErrors) Unwrap() []error { return e }

// splitList splits a comma-separated value, trimming items and dropping
// empty ones. off reports the word "off" (any case), which means none.
func splitList(s string) (items []string, off bool) {
	if strings.EqualFold(s, "off") {
		return nil, true
	}
	return splitItems(s), false
}

// splitItems splits a comma-separated value, trimming items and dropping
// empty ones; "off" is an item like any other.
func splitItems(s string) []string {
	var items []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// parseList applies parse to each item of a comma-separated value and
// collects every error. "off" gives nil.
func parseList[T any](s string, parse func(string) (T, error)) ([]T, error) {
	items, _ := splitList(s)
	return parseItems(items, parse)
}

// parseItems applies parse to each item and collects every error.
func parseItems[T any](items []string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	var errs itemErrors
	for _, item := range items {
		v, err := parse(item)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, v)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// URL is an origin's base URL: http or https, a host and an optional port;
// no user info, path (but "/"), query or fragment. The zero URL is unset.
type URL struct {
	u *url.URL
}

// URL returns a copy of the URL (nil when unset), whose Path is "".
func (u URL) URL() *url.URL {
	if u.u == nil {
		return nil
	}
	c := *u.u
	return &c
}

// String returns the URL as text, "" when unset.
func (u URL) String() string {
	if u.u == nil {
		return ""
	}
	return u.u.String()
}

// MarshalText returns the URL as text.
func (u URL) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText parses and checks an origin URL. A password in it is never
// part of an error: the user info is shown as "xxxxx".
func (u *URL) UnmarshalText(text []byte) error {
	s := string(text)
	shown := redactUserinfo(s)
	parsed, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", shown)
	}
	if parsed.Scheme != "http" && parsed.Scheme != "https" {
		return fmt.Errorf("%q must use http or https", shown) // without a scheme, the rest means little
	}
	var errs itemErrors
	if parsed.Host == "" {
		errs = append(errs, fmt.Errorf("%q has no host", shown))
	} else if !validHostPort(parsed.Host, false) {
		errs = append(errs, fmt.Errorf("%q has an invalid host or port", shown))
	}
	if parsed.User != nil {
		errs = append(errs, fmt.Errorf("%q must not hold user info", shown))
	}
	if p := parsed.EscapedPath(); p != "" && p != "/" {
		errs = append(errs, fmt.Errorf("%q must not have a path other than \"/\"", shown))
	}
	if parsed.RawQuery != "" || parsed.ForceQuery {
		errs = append(errs, fmt.Errorf("%q must not have a query", shown))
	}
	if strings.Contains(s, "#") {
		errs = append(errs, fmt.Errorf("%q must not have a fragment", shown))
	}
	if len(errs) > 0 {
		return errs
	}
	parsed.Path, parsed.RawPath = "", ""
	u.u = parsed
	return nil
}

// redactUserinfo replaces the user info of a URL-like string, parsable or
// not, with "xxxxx".
func redactUserinfo(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return s
	}
	return scheme + "://xxxxx@" + rest[at+1:]
}

// Secret is a string that never shows itself when printed or logged: its
// String, GoString, Format, LogValue and MarshalText all give
// "[redacted]". Use string(s) to read the value.
type Secret string

// Redacted is what a Secret shows instead of its value.
const Redacted = "[redacted]"

// String returns "[redacted]".
func (Secret) String() string { return Redacted }

// GoString returns "[redacted]", so %#v does not show the value either.
func (Secret) GoString() string { return Redacted }

// Format prints "[redacted]" whatever the verb (%d and %x included).
func (Secret) Format(f fmt.State, _ rune) { io.WriteString(f, Redacted) }

// LogValue returns "[redacted]" (slog.LogValuer).
func (Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalText returns "[redacted]", so JSON (slog's JSON handler included)
// does not show the value.
func (Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Size is a number of bytes. As text it is an integer, optionally followed
// by B, KiB, MiB or GiB ("1048576", "512KiB", "256MiB"), or by nginx's k, m
// or g in either case ("512k", "256M", "1g"), which mean the same powers of
// 1024.
type Size int64

// Units of Size.
const (
	KiB Size = 1 << 10 // 1024 bytes
	MiB Size = 1 << 20 // 1024 KiB
	GiB Size = 1 << 30 // 1024 MiB
)

// UnmarshalText parses a size. Negative numbers, fractions, other units and
// sizes beyond int64 are errors.
func (s *Size) UnmarshalText(text []byte) error {
	n, err := parseSize(string(text))
	if err != nil {
		return err
	}
	*s = n
	return nil
}

func parseSize(s string) (Size, error) {
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("%q must not be negative", s)
	}
	unit := strings.TrimLeft(s, "0123456789")
	number := s[:len(s)-len(unit)]
	scale := sizeUnit(unit)
	if number == "" || scale == 0 {
		return 0, fmt.Errorf("%q is not a size (use bytes or an integer with KiB, MiB or GiB)", s)
	}
	n, err := strconv.ParseInt(number, 10, 64)
	if err != nil || n > math.MaxInt64/int64(scale) {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return Size(n) * scale, nil
}

// sizeUnit is the scale of a Size's unit, 0 for an unknown one.
func sizeUnit(unit string) Size {
	switch unit {
	case "", "B":
		return 1
	case "KiB":
		return KiB
	case "MiB":
		return MiB
	case "GiB":
		return GiB
	}
	switch strings.ToLower(unit) { // nginx's suffixes
	case "k":
		return KiB
	case "m":
		return MiB
	case "g":
		return GiB
	}
	return 0
}

// String returns the size in the largest unit that divides it ("256MiB",
// "1000").
func (s Size) String() string {
	for _, u := range []struct {
		scale Size
		name  string
	}{{GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if s != 0 && s%u.scale == 0 {
			return strconv.FormatInt(int64(s/u.scale), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// MarshalText returns the size as String does.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Duration is a time.Duration that is never negative. As text it is Go's
// syntax ("30s", "1m30s", "2h"), or a bare "0".
type Duration time.Duration

// UnmarshalText parses a duration. A number without a unit (but 0) and a
// negative duration are errors.
func (d *Duration) UnmarshalText(text []byte) error {
	s := string(text)
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a duration (use a unit, e.g. \"30s\")", s)
	case v < 0:
		return fmt.Errorf("%q must not be negative", s)
	}
	*d = Duration(v)
	return nil
}

// String returns the duration as time.Duration does ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText returns the duration as String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Level is a log level, written in lower case: debug, info, warn or error.
type Level slog.Level

// UnmarshalText parses a level. Other spellings ("INFO", "warning",
// "info+2") are errors, so a typo is not taken for another level.
func (l *Level) UnmarshalText(text []byte) error {
	s := string(text)
	var v slog.Level
	switch s {
	case "debug":
		v = slog.LevelDebug
	case "info":
		v = slog.LevelInfo
	case "warn":
		v = slog.LevelWarn
	case "error":
		v = slog.LevelError
	default:
		return fmt.Errorf("%q must be one of debug, info, warn, error", s)
	}
	*l = Level(v)
	return nil
}

// Level returns the slog level, so that a Level is a slog.Leveler.
func (l Level) Level() slog.Level { return slog.Level(l) }

// String returns the level in lower case ("info").
func (l Level) String() string { return strings.ToLower(slog.Level(l).String()) }

// MarshalText returns the level as String does.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// Switch is an on/off variable. Its zero value, SwitchUnset, is what an
// unset variable gives; Load resolves it to SwitchOn or SwitchOff.
type Switch uint8

// Values of a Switch.
const (
	SwitchUnset Switch = iota // not set: Load decides
	SwitchOff                 // "off"
	SwitchOn                  // "on"
)

// On reports whether the switch is on.
func (s Switch) On() bool { return s == SwitchOn }

// UnmarshalText parses "on" or "off", in any case.
func (s *Switch) UnmarshalText(text []byte) error {
	switch v := string(text); {
	case strings.EqualFold(v, "on"):
		*s = SwitchOn
	case strings.EqualFold(v, "off"):
		*s = SwitchOff
	default:
		return fmt.Errorf("%q must be on or off", v)
	}
	return nil
}

// String returns "on", "off" or "" (unset).
func (s Switch) String() string {
	switch s {
	case SwitchOn:
		return "on"
	case SwitchOff:
		return "off"
	}
	return ""
}

// MarshalText returns the switch as String does.
func (s Switch) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
