package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/isrproxy/isrproxy/revalidateclient"
)

// revalidateUsage is what "isrproxy revalidate -h" prints.
const revalidateUsage = `Usage: isrproxy revalidate [-tag T]... [-prefix P]... [-mode M] [-async] [-linked] [-host H] [PATH...]

Calls the revalidate API of the isrproxy at ISRPROXY_URL (default ` + revalidateclient.DefaultURL + `)
with REVALIDATE_SECRET (or the file REVALIDATE_SECRET_FILE names), and prints
one line per result: "replaced /a 200", "failed /b origin answered 503; ...".
Exit status: 0 when every key was revalidated, 1 when any failed or the call
did, 2 for a usage error.

Flags:
`

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// revalidateCmd is "isrproxy revalidate": a client of the API, for cron
// jobs, deploy scripts and CI.
func revalidateCmd(ctx context.Context, args []string, environ map[string]string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("isrproxy revalidate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		io.WriteString(stderr, revalidateUsage)
		fs.PrintDefaults()
	}
	var req revalidateclient.Request
	var tags, prefixes listFlag
	fs.Var(&tags, "tag", "revalidate every page tagged `T` (repeatable)")
	fs.Var(&prefixes, "prefix", "revalidate every page whose path starts with `P` (repeatable)")
	fs.StringVar(&req.Mode, "mode", "refetch", "refetch, soft (mark stale) or purge (remove)")
	fs.BoolVar(&req.Async, "async", false, "start a background job and print its id, without waiting")
	fs.BoolVar(&req.Linked, "linked", false, "also the stored pages that link to each revalidated one")
	fs.StringVar(&req.Host, "host", "", "whose pages (default: the host ISRPROXY_URL names)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long, a job's wait included")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	req.Paths, req.Tags, req.Prefixes = fs.Args(), tags, prefixes
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "isrproxy revalidate: "+format+"\n", a...)
		return 2
	}
	if len(req.Paths)+len(req.Tags)+len(req.Prefixes) == 0 {
		return usage("name at least one PATH, -tag or -prefix (-h for help)")
	}
	for _, p := range append(append([]string{}, req.Paths...), req.Prefixes...) {
		if !strings.HasPrefix(p, "/") {
			return usage("%q must begin with \"/\"", p)
		}
	}
	switch req.Mode {
	case "refetch", "soft", "purge":
	default:
		return usage("-mode %q: use refetch, soft or purge", req.Mode)
	}
	base := environ["ISRPROXY_URL"]
	if strings.TrimSpace(base) == "" {
		base = revalidateclient.DefaultURL
	}
	if err := revalidateclient.CheckURL(base); err != nil {
		return usage("ISRPROXY_URL %q %v", base, err)
	}
	secret, err := clientSecret(environ)
	if err != nil {
		return usage("%v", err)
	}
	c := &revalidateclient.Client{BaseURL: base, Path: environ["REVALIDATE_PATH"], Secret: secret}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	a, err := c.Revalidate(ctx, req)
	if err != nil {
		fmt.Fprintf(stderr, "isrproxy revalidate: %v\n", err)
		var apiErr *revalidateclient.APIError
		if errors.As(err, &apiErr) && apiErr.BadInput() {
			return 2
		}
		return 1
	}
	for _, r := range a.Results {
		fmt.Fprintln(stdout, r.Line())
	}
	if !a.Done {
		fmt.Fprintf(stdout, "job %s running: GET %s/jobs/%s\n", a.Job, strings.TrimSuffix(firstNonEmpty(environ["REVALIDATE_PATH"], revalidateclient.DefaultPath), "/"), a.Job)
	}
	if a.Failed() {
		return 1
	}
	return 0
}

// clientSecret is REVALIDATE_SECRET, or the content of the file
// REVALIDATE_SECRET_FILE names without its trailing newlines: as the
// server reads them.
func clientSecret(environ map[string]string) (string, error) {
	secret, file := environ["REVALIDATE_SECRET"], strings.TrimSpace(environ["REVALIDATE_SECRET_FILE"])
	switch {
	case secret != "" && file != "":
		return "", errors.New("set REVALIDATE_SECRET or REVALIDATE_SECRET_FILE, not both")
	case secret != "":
		return secret, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("REVALIDATE_SECRET_FILE: %w", err)
		}
		if s := strings.TrimRight(string(b), "\r\n"); s != "" {
			return s, nil
		}
		return "", fmt.Errorf("REVALIDATE_SECRET_FILE: %q is empty", file)
	}
	return "", errors.New("REVALIDATE_SECRET (or REVALIDATE_SECRET_FILE) is required")
}

func firstNonEmpty(a, b string) string {
	if strings.TrimSpace(a) != "" {
		return a
	}
	return b
}
