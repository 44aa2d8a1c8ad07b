package record

import (
	"errors"
	"fmt"
	"strings"
)

// Query names the record of a container's init, the one way every caller
// finds it: `fuseguard kill` (by pid, or by --id checked against the pid),
// the runtime wrapper (by the exact id runc was given) and the executor
// (by Docker's id checked against Docker's pid, or, when Docker does not
// answer, by the id or id prefix its caller gave).
type Query struct {
	// ID is the container id: the record of exactly that id or, with
	// IDPrefix and no such record, the one record whose id starts with
	// ID (ids as Docker shortens them; two matches are an error). ""
	// finds by PID alone.
	ID       string
	IDPrefix bool
	// PID is the init the record must be for (0: any, with an ID);
	// StartTime, when non-zero, its start time (a pid reused since the
	// record was written does not match).
	PID       int
	StartTime uint64
}

// Find returns the record q names, or an error wrapping ErrNoRecord (or
// ErrInvalidID, or why the records could not be read). Found by PID alone,
// the record updated last wins: a stale record may name a pid reused since.
func (s Store) Find(q Query) (*Record, error) {
	if q.ID == "" {
		if q.PID <= 0 {
			return nil, fmt.Errorf("%w: neither a container id nor an init pid to find", ErrNoRecord)
		}
		return s.findByInit(q.PID, q.StartTime)
	}
	rec, err := s.Load(q.ID)
	if q.IDPrefix && errors.Is(err, ErrNoRecord) {
		rec, err = s.findByPrefix(q.ID, err)
	}
	if err != nil {
		return nil, err
	}
	if !q.initMatches(rec) {
		return nil, fmt.Errorf("%w %s with init pid %d: the record is for pid %d", ErrNoRecord, q.ID, q.PID, rec.InitPID)
	}
	return rec, nil
}

func (q Query) initMatches(r *Record) bool {
	return (q.PID == 0 || r.InitPID == q.PID) && (q.StartTime == 0 || r.InitStartTime == q.StartTime)
}

// findByInit returns the record whose init is pid (and start time, when
// non-zero), the one updated last when several match.
func (s Store) findByInit(pid int, startTime uint64) (*Record, error) {
	recs, listErr := s.List()
	q := Query{PID: pid, StartTime: startTime}
	var found *Record
	for _, r := range recs {
		if q.initMatches(r) && (found == nil || r.Updated.After(found.Updated)) {
			found = r
		}
	}
	if found != nil {
		return found, nil
	}
	err := fmt.Errorf("%w with init pid %d (start time %d)", ErrNoRecord, pid, startTime)
	if listErr != nil {
		err = errors.Join(err, listErr)
	}
	return nil, err
}

// findByPrefix returns the one record whose id starts with prefix; notFound
// is why the exact id found none.
func (s Store) findByPrefix(prefix string, notFound error) (*Record, error) {
	recs, listErr := s.List()
	var found *Record
	for _, r := range recs {
		if !strings.HasPrefix(r.ID, prefix) {
			continue
		}
		if found != nil {
			// %.12s: ids as `docker ps` shows them.
			return nil, fmt.Errorf("record: %q names both %.12s and %.12s", prefix, found.ID, r.ID)
		}
		found = r
	}
	if found == nil {
		return nil, errors.Join(notFound, listErr)
	}
	return found, nil
}
