// Package revalidation is the vocabulary shared by the page handler, which
// refetches, marks and removes pages, and the revalidate API, which asks it
// to: the modes a call names, the outcome of each key, and why a key failed.
// It holds types only, so that neither side depends on the other.
package revalidation

import "fmt"

// Mode is what a revalidation does to each key it names.
type Mode string

// The modes of a revalidation.
const (
	// Refetch fetches the page anew and swaps it in (the default).
	Refetch Mode = "refetch"
	// Soft marks the page stale: the next visitor gets it as STALE and
	// starts one background refetch.
	Soft Mode = "soft"
	// Purge removes the page: the next visitor fills it again.
	Purge Mode = "purge"
)

// ParseMode returns the Mode named s ("" is [Refetch]), or false.
func ParseMode(s string) (Mode, bool) {
	switch Mode(s) {
	case "", Refetch:
		return Refetch, true
	case Soft, Purge:
		return Mode(s), true
	}
	return "", false
}

// Outcome is what happened to one key and variant.
type Outcome string

// The outcomes a [Result] reports.
const (
	// Replaced: a refetch replaced the stored version.
	Replaced Outcome = "replaced"
	// Stored: a refetch stored a page that was not stored before.
	Stored Outcome = "stored"
	// Marked: the page was marked stale (also when it was not stored).
	Marked Outcome = "marked"
	// Purged: the page was removed (also when it was not stored).
	Purged Outcome = "purged"
	// Failed: nothing changed; [Result.Failure] says why.
	Failed Outcome = "failed"
)

// Outcomes lists every Outcome, in the order answers and logs count them.
var Outcomes = []Outcome{Replaced, Stored, Marked, Purged, Failed}

// Reason classifies why a key failed.
type Reason int

// The reasons a refetch fails. Every one keeps the stored version.
const (
	// OriginStatus: the origin answered a status that is not stored
	// ([Failure.Status]).
	OriginStatus Reason = iota + 1
	// NotStorable: the origin's answer may not be stored
	// ([Failure.Detail] names the rule, e.g. "set-cookie").
	NotStorable
	// OriginTimeout: the origin did not answer within ORIGIN_TIMEOUT.
	OriginTimeout
	// OriginUnreachable: the request failed (refused, reset, truncated
	// body); [Failure.Detail] is the error.
	OriginUnreachable
	// TooLarge: the answer is larger than MAX_OBJECT_BYTES.
	TooLarge
	// Busy: too many bodies are being buffered at once to read this one.
	Busy
	// NotAdmitted: the store refused the page (memory budget).
	NotAdmitted
	// Canceled: the call ended (shutdown) before the key was done.
	Canceled
)

// Failure is why one key failed.
type Failure struct {
	Reason Reason
	// Status is the origin's status code, for OriginStatus.
	Status int
	// Detail is the rule (NotStorable) or the error text (OriginUnreachable,
	// Canceled).
	Detail string
}

// Error names f's reason with its status or detail, for logs. The API
// words its own message for visitors of its answers from the fields.
func (f *Failure) Error() string {
	switch {
	case f.Status != 0:
		return fmt.Sprintf("%s %d", f.Reason, f.Status)
	case f.Detail != "":
		return f.Reason.String() + ": " + f.Detail
	}
	return f.Reason.String()
}

// String names r in logs.
func (r Reason) String() string {
	switch r {
	case OriginStatus:
		return "origin status"
	case NotStorable:
		return "not storable"
	case OriginTimeout:
		return "origin timeout"
	case OriginUnreachable:
		return "origin unreachable"
	case TooLarge:
		return "too large"
	case Busy:
		return "busy"
	case NotAdmitted:
		return "not admitted"
	case Canceled:
		return "canceled"
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Result is the outcome for one key and variant.
type Result struct {
	// Target is the escaped path plus normalised query of the key.
	Target string
	// Status is the origin's status code, for refetches that got an answer.
	Status int
	// Outcome is what happened.
	Outcome Outcome
	// Failure says why, when Outcome is Failed.
	Failure *Failure

	// In cluster mode only (REDIS_URL set):
	// Replicas lists the replicas that hold the result, this one first.
	Replicas []string
	// Unconfirmed lists the live replicas that did not confirm in time.
	Unconfirmed []string
	// Alone names this replica when the cluster was unreachable: the
	// result was applied here only.
	Alone string
}

// Fail returns a failed Result for target.
func Fail(target string, f Failure) Result {
	return Result{Target: target, Outcome: Failed, Failure: &f}
}
