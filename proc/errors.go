package proc

import "errors"

// ErrNoProcess is returned (wrapped) when the pid or tid does not exist (any more).
var ErrNoProcess = errors.New("no such process")

// ErrUnreadable is returned (wrapped) when the file exists but cannot be read
// or is empty, e.g. mountinfo and ns links of a task already in do_exit.
var ErrUnreadable = errors.New("unreadable proc entry")
