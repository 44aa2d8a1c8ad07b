package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fuseguard/fuseguard/internal/volatile"
)

// MaxIDLen keeps "<id>.json" within NAME_MAX (255).
const MaxIDLen = 255 - len(recordExt)

const (
	recordExt  = ".json"
	tempPrefix = ".tmp-" // never a valid id: ids cannot start with '.'
)

// ValidateID checks a container id before it becomes a file name: 1 to
// MaxIDLen bytes of [A-Za-z0-9_.-], not starting with '.'.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidID)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidID, len(id), MaxIDLen)
	}
	// A leading dot rules out ".", ".." and hidden (temporary) files.
	if id[0] == '.' {
		return fmt.Errorf("%w: %q starts with '.'", ErrInvalidID, id)
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_' || b == '.' || b == '-') {
			return fmt.Errorf("%w: %q: byte %#x at %d", ErrInvalidID, id, b, i)
		}
	}
	return nil
}

// NewStore returns a Store on dir; "" means $FUSEGUARD_STATE_DIR or DefaultStateDir.
func NewStore(dir string) Store {
	if dir == "" {
		dir = os.Getenv(EnvStateDir)
	}
	if dir == "" {
		dir = DefaultStateDir
	}
	return Store{Dir: dir}
}

func (s Store) path(id string) string { return filepath.Join(s.Dir, id+recordExt) }

// Save writes r as <Dir>/<id>.json atomically: a temporary file in Dir,
// fsynced, renamed over the record, and Dir fsynced (no syncs when Dir is
// on tmpfs or ramfs). A zero Version is
// written as RecordVersion.
func (s Store) Save(r *Record) error {
	if r == nil {
		return errors.New("save record: nil record")
	}
	if err := ValidateID(r.ID); err != nil {
		return fmt.Errorf("save record: %w", err)
	}
	rec := *r
	if rec.Version == 0 || knownVersion(rec.Version) {
		// An older record is upgraded: its fields are a subset.
		rec.Version = RecordVersion
	}
	if rec.Version != RecordVersion {
		return fmt.Errorf("save record %s: %w: %d", r.ID, ErrRecordVersion, rec.Version)
	}
	b, err := json.MarshalIndent(&rec, "", "  ")
	if err != nil {
		return fmt.Errorf("save record %s: %w", r.ID, err)
	}
	if err := EnsureStateDir(s.Dir); err != nil {
		return fmt.Errorf("save record %s: %w", r.ID, err)
	}
	if err := s.writeAtomic(s.path(r.ID), append(b, '\n')); err != nil {
		return fmt.Errorf("save record %s: %w", r.ID, err)
	}
	return nil
}

// WriteFile writes name, a file of Dir that is no record (it must not end
// in ".json" nor start with '.'), atomically as Save writes a record.
func (s Store) WriteFile(name string, b []byte) error {
	if name == "" || strings.HasSuffix(name, recordExt) || name[0] == '.' || strings.ContainsRune(name, '/') {
		return fmt.Errorf("write %q: not a state file name", name)
	}
	if err := EnsureStateDir(s.Dir); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := s.writeAtomic(filepath.Join(s.Dir, name), b); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func (s Store) writeAtomic(dst string, b []byte) (err error) {
	// CreateTemp makes the file 0600.
	f, err := os.CreateTemp(s.Dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(b); err != nil {
		return err
	}
	// On tmpfs (/run on most nodes) there is nothing to make durable.
	mem := volatile.Dir(s.Dir)
	if !mem {
		if err = f.Sync(); err != nil {
			return err
		}
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), dst); err != nil {
		return err
	}
	if mem {
		return nil
	}
	return syncDir(s.Dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Load reads the record of id: ErrNoRecord (wrapping fs.ErrNotExist) when
// there is none, ErrRecordVersion when another version wrote it.
func (s Store) Load(id string) (*Record, error) {
	if err := ValidateID(id); err != nil {
		return nil, fmt.Errorf("load record: %w", err)
	}
	if err := CheckStateDir(s.Dir); err != nil {
		return nil, fmt.Errorf("load record %s: %w", id, err)
	}
	return s.load(s.path(id), id)
}

func (s Store) load(path, id string) (*Record, error) {
	b, err := readNoFollow(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w %s: %w", ErrNoRecord, id, err)
		}
		return nil, fmt.Errorf("load record %s: %w", id, err)
	}
	// Check the version before the body: another version's body may
	// not decode into this Record at all.
	var v struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("load record %s: %s: %w", id, path, err)
	}
	if !knownVersion(v.Version) {
		return nil, fmt.Errorf("load record %s: %s: %w: %d, want %d to %d", id, path, ErrRecordVersion, v.Version, minRecordVersion, RecordVersion)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("load record %s: %s: %w", id, path, err)
	}
	if r.ID != id {
		return nil, fmt.Errorf("load record %s: %s holds id %q", id, path, r.ID)
	}
	return &r, nil
}

// knownVersion reports whether this build loads records of version v.
func knownVersion(v int) bool { return v >= minRecordVersion && v <= RecordVersion }

// Remove deletes the record of id; a missing record is not an error.
func (s Store) Remove(id string) error {
	if err := ValidateID(id); err != nil {
		return fmt.Errorf("remove record: %w", err)
	}
	if err := CheckStateDir(s.Dir); err != nil {
		return fmt.Errorf("remove record %s: %w", id, err)
	}
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove record %s: %w", id, err)
	}
	return nil
}

// List reads every record in Dir, ordered by id. A record that cannot be
// read does not hide the others: List returns the good ones together with
// an error naming each bad file. A missing Dir holds no records. List also
// removes what interrupted saves left behind (their temporary files older
// than a minute).
func (s Store) List() ([]*Record, error) {
	files, err := s.files("list records")
	var (
		recs []*Record
		errs = []error{err}
	)
	for _, f := range files {
		r, err := s.load(filepath.Join(s.Dir, f.name), f.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		recs = append(recs, r)
	}
	return recs, errors.Join(errs...)
}

// Stamp identifies one version of a record file. Save replaces the file
// (rename of a new one: a new inode), so a record whose stamp did not
// change did not change.
type Stamp struct {
	Ino   uint64
	Size  int64
	Mtime int64 // ns
}

// StampedID is a record's id and the stamp of its file.
type StampedID struct {
	ID    string
	Stamp Stamp
}

// Stamps lists the records in Dir, ordered by id, with the stamp of each
// file, without reading them: a reader that keeps records loaded (the
// watcher) reloads only those whose stamp changed. Errors and clean-up as
// in List.
func (s Store) Stamps() ([]StampedID, error) {
	files, err := s.files("stamp records")
	out := make([]StampedID, 0, len(files))
	for _, f := range files {
		out = append(out, f.StampedID)
	}
	return out, err
}

// recordFile is one record file found in Dir.
type recordFile struct {
	StampedID
	name string
}

// files lists the record files in Dir, ordered by id, and removes stale
// temporary files; a file with an invalid id is reported, not listed.
func (s Store) files(op string) ([]recordFile, error) {
	if err := CheckStateDir(s.Dir); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	var (
		files []recordFile
		errs  []error
	)
	if err := s.removeStaleTemps(entries, time.Now()); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", op, err))
	}
	for _, e := range entries {
		name := e.Name()
		id, ok := strings.CutSuffix(name, recordExt)
		// Temporary files start with '.', like every file Save did not
		// finish; they are no records.
		if !ok || strings.HasPrefix(name, ".") || !e.Type().IsRegular() {
			continue
		}
		if err := ValidateID(id); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", op, filepath.Join(s.Dir, name), err))
			continue
		}
		f := recordFile{StampedID: StampedID{ID: id}, name: name}
		// Info is an lstat of the entry; a file removed meanwhile has no
		// stamp and is loaded (and found missing) by the caller.
		if info, err := e.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				f.Stamp = Stamp{Ino: st.Ino, Size: st.Size, Mtime: st.Mtim.Nano()}
			}
		}
		files = append(files, f)
	}
	return files, errors.Join(errs...)
}
