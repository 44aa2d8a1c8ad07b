package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/fuseguard/fuseguard/record"
)

// maxFileSize caps the bytes read from a configuration file: a node
// configuration is a few hundred bytes, and a wrong path (a device, a
// huge log) must not stall every hook.
const maxFileSize = 1 << 20

// Node returns the effective configuration of this node without the
// command's flags: the file flagPath names, else the one $FUSEGUARD_CONFIG
// names, else DefaultPath, which may be missing (the defaults); then the
// environment ($FUSEGUARD_STATE_DIR). It also returns the file read, ""
// when none was.
func Node(flagPath string, getenv func(string) string) (Config, string, error) {
	path, explicit := flagPath, true
	if path == "" {
		path = getenv(EnvPath)
	}
	if path == "" {
		path, explicit = DefaultPath, false
	}
	c, err := Load(path)
	switch {
	case errors.Is(err, ErrNotFound) && !explicit:
		c, path = Defaults(), ""
	case err != nil:
		return Config{}, "", err
	}
	ApplyEnv(&c, getenv)
	return c, path, nil
}

// ApplyEnv sets c's keys that an environment variable overrides:
// $FUSEGUARD_STATE_DIR.
func ApplyEnv(c *Config, getenv func(string) string) {
	if d := getenv(record.EnvStateDir); d != "" {
		c.StateDir = d
	}
}

// Load reads the file at path over the defaults and validates the result.
// A missing file is ErrNotFound; anything wrong in it is ErrInvalid, with
// a one-line message naming the file, the key and, when the TOML library
// knows it, the line.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, fmt.Errorf("%w: %s", ErrNotFound, path)
	}
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && !st.Mode().IsRegular() {
		return Config{}, fmt.Errorf("config %s: %w: not a regular file", path, ErrInvalid)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return Config{}, fmt.Errorf("config %s: %w: larger than %d bytes", path, ErrInvalid, maxFileSize)
	}
	return Parse(data, path)
}

// Parse decodes data, the contents of the file name, over the defaults
// and validates the result; errors are as Load's.
func Parse(data []byte, name string) (Config, error) {
	c := Defaults()
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return Config{}, decodeError(name, err)
	}
	if keys := md.Undecoded(); len(keys) > 0 {
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = k.String()
		}
		return Config{}, fmt.Errorf("config %s: %w: %w %s", name, ErrInvalid, ErrUnknownKey, strings.Join(names, ", "))
	}
	if c.Policy.AllowSharedFSTypes == nil {
		c.Policy.AllowSharedFSTypes = []string{}
	}
	if c.Policy.DedicatedPrefixes == nil {
		c.Policy.DedicatedPrefixes = []string{}
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", name, err)
	}
	return c, nil
}

// decodeError makes one line of the TOML library's error: file:line, key,
// message.
func decodeError(name string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		where := name
		if pe.Position.Line > 0 {
			where = fmt.Sprintf("%s:%d", name, pe.Position.Line)
		}
		msg := oneLine(pe.Message)
		if pe.LastKey != "" {
			msg = pe.LastKey + ": " + msg
		}
		return fmt.Errorf("config %s: %w: %s", where, ErrInvalid, msg)
	}
	// Type mismatches say "toml: line N (last key "K"): ...".
	return fmt.Errorf("config %s: %w: %s", name, ErrInvalid, oneLine(strings.TrimPrefix(err.Error(), "toml: ")))
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// WriteTOML writes c as a TOML document that Parse reads back to c.
func (c Config) WriteTOML(w io.Writer) error {
	return toml.NewEncoder(w).Encode(c)
}
