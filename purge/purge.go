// Package purge serves the revalidate API (README.md#the-revalidate-api): a CMS calls
// REVALIDATE_PATH with a shared secret and names pages by path, tag or
// prefix; the Handler checks the call, resolves the keys and has a
// [Revalidator] refetch, mark or remove them, synchronously or as a
// background job. It never forwards anything to the origin itself.
package purge

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/isrproxy/isrproxy/cache"
	"github.com/isrproxy/isrproxy/revalidation"
)

// DefaultPath is where the API answers when [Options.Path] is empty.
const DefaultPath = "/api/revalidate"

// Result is the outcome for one key and variant, as the API's JSON reports it.
type Result struct {
	// Path is the escaped path plus normalised query ([cache.Key.Target]).
	Path string `json:"path"`
	// Status is the origin's status code, for refetches only.
	Status int `json:"status,omitempty"`
	// Outcome is what happened.
	Outcome revalidation.Outcome `json:"outcome"`
	// Error explains a failed outcome, e.g. "origin answered 503; previous
	// version kept".
	Error string `json:"error,omitempty"`
	// Replicas lists, in cluster mode, the replicas that hold the result,
	// the one called first.
	Replicas []string `json:"replicas,omitempty"`
	// Unconfirmed lists, in cluster mode, the live replicas that did not
	// confirm in time; alone names the replica called when the cluster
	// was unreachable. Either makes the call fail.
	Unconfirmed []string `json:"unconfirmed,omitempty"`
	alone       string
}

// clusterFailed reports a result the whole cluster does not hold.
func (r Result) clusterFailed() bool { return len(r.Unconfirmed) > 0 || r.alone != "" }

// Revalidator acts on keys; the page handler implements it. Each method
// returns one result per stored variant of the key, and at least one.
type Revalidator interface {
	// Refetch fetches key from the origin with a fetch that starts after the
	// call (it never joins one already in flight: that one may have read
	// the old page) and stores it. It limits its own concurrency
	// (REVALIDATE_CONCURRENCY) and blocks until the page is stored or the
	// fetch has failed; a failure keeps the stored version. ctx ends the
	// wait early (shutdown).
	Refetch(ctx context.Context, key cache.Key) []revalidation.Result
	// MarkStale marks every variant of key stale; idempotent.
	MarkStale(key cache.Key) []revalidation.Result
	// Purge removes every variant of key; idempotent.
	Purge(key cache.Key) []revalidation.Result
}

// InFlight reaches fetches of pages not stored yet (first fills). A tag or
// prefix revalidation finds only stored keys in the [Index]; before it
// looks, the handler calls SupersedeInFlight so that a fetch of a matching
// page already in flight, which read the origin before the call, is not
// stored afterwards as if newer (modes refetch and purge) or is stored
// marked stale (soft).
type InFlight interface {
	SupersedeInFlight(host string, tags, prefixes []string, mode revalidation.Mode)
}

// Index lists stored keys; [cache.Store] implements it.
type Index interface {
	// KeysByTag returns the keys of host's stored pages tagged tag.
	KeysByTag(host, tag string) []cache.Key
	// KeysByPrefix returns the keys of host's stored pages whose escaped
	// path starts with prefix.
	KeysByPrefix(host, prefix string) []cache.Key
}

// HostIndex lists every stored key of a host, for a PURGE whose path is a
// pattern (X-Purge-Method: regex); [cache.Store] implements it. An [Index]
// that does not implement it matches no pattern.
type HostIndex interface {
	KeysOfHost(host string) []cache.Key
}

// LinkIndex finds the stored pages that link to a target (escaped path plus
// normalised query), for a revalidation with linked=1; [cache.Store]
// implements it. An [Index] that does not implement it finds no linked page.
type LinkIndex interface {
	KeysLinkingTo(host, target string) []cache.Key
}

// Inspector tells what is stored for a key, for GET Path/status; the page
// handler implements it.
type Inspector interface {
	Inspect(key cache.Key) revalidation.KeyState
}

// Options configures a [Handler]. Revalidator and Secret are required; every
// other zero value has a documented default.
type Options struct {
	// Secret is REVALIDATE_SECRET. It must not be empty (New panics).
	Secret string
	// Path is REVALIDATE_PATH, such as "/api/revalidate"; "" means
	// [DefaultPath]. A trailing "/" is ignored.
	Path string
	// AllowedHosts is ALLOWED_HOSTS, already normalised (lower case, no
	// default port). nil or empty: any host may be named.
	AllowedHosts []string
	// Ignore is IGNORE_QUERY_PARAMS, applied by [cache.NewKey] to the query
	// of a path target. The zero Matcher ignores nothing.
	Ignore cache.Matcher
	// Keep is KEEP_QUERY_PARAMS: when not empty, the only query parameters
	// kept in the key of a path target ([cache.NewKey]). The zero Matcher
	// keeps every parameter.
	Keep cache.Matcher
	// Revalidator acts on the keys. It must not be nil (New panics).
	Revalidator Revalidator
	// Index resolves tags and prefixes. nil: tags and prefixes match nothing.
	Index Index
	// InFlight reaches first fills in flight for tag and prefix targets.
	// nil: none is reached (only stored pages are).
	InFlight InFlight
	// Logger gets one line per call. nil: discard.
	Logger *slog.Logger
	// OnResult is called once per Result with its outcome (for metrics).
	// nil: ignored. It may be called from several goroutines at once.
	OnResult func(outcome revalidation.Outcome)
	// Now is the clock for lockout and job expiry. nil: [time.Now].
	Now func() time.Time
	// PurgeAllow is PURGE_ALLOW: the client networks whose PURGE and BAN
	// requests need no secret. nil: every one needs it.
	PurgeAllow []netip.Prefix
	// PurgeMode is PURGE_MODE, the mode of a PURGE or BAN without
	// X-Purge-Mode. "": [revalidation.Refetch].
	PurgeMode revalidation.Mode
	// Inspector answers GET Path/status. nil: the endpoint reports every
	// key as not stored, with its last revalidation.
	Inspector Inspector
}
