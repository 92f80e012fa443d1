package commands

// Status is the one-word result of a request. The same values name it in
// the log, the audit record and the metrics label.
type Status string

// Statuses of requests.
const (
	StatusOK         Status = "ok"                 // done, every Plivo call succeeded
	StatusPartial    Status = "partial"            // some members changed, some not
	StatusFailed     Status = "failed"             // nothing changed: Plivo or mpcbot failed
	StatusRefused    Status = "refused"            // the policy said no (or a stale button)
	StatusConfirm    Status = "needs_confirmation" // waiting for the requester to confirm
	StatusSkipped    Status = "skipped"            // a timer found nothing left to revert
	StatusCancelled  Status = "cancelled"          // the requester cancelled (a confirmation, a timer)
	StatusUsageError Status = "usage_error"        // the command or button could not be understood
	StatusDuplicate  Status = "duplicate"          // a second tap of the same button: runs once
	StatusOverloaded Status = "overloaded"         // the queue was full: not taken
	StatusBusy       Status = "busy"               // waited too long in the queue: not started
	StatusShutdown   Status = "shutdown"           // mpcbot stopped before starting it
)

// Mark returns the emoji shown before a line with this status.
func (s Status) mark() string {
	switch s {
	case StatusOK:
		return "✅"
	case StatusPartial:
		return "⚠️"
	case StatusRefused:
		return "⛔"
	case StatusConfirm:
		return "❓"
	case StatusSkipped, StatusCancelled, StatusDuplicate:
		return "ℹ️"
	}
	return "❌"
}
