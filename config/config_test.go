package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fuseguard/fuseguard/killer"
)

func TestLoadShippedExampleIsDefaults(t *testing.T) {
	got, err := Load(filepath.Join("..", "deploy", "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := Defaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("deploy/config.toml decodes to\n%+v\nwant the defaults\n%+v", got, want)
	}
}

func TestParse(t *testing.T) {
	withDefaults := func(f func(*Config)) Config {
		c := Defaults()
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		in      string
		want    Config
		wantErr []error  // every one must match errors.Is
		wantMsg []string // every one must be in the message
	}{
		{name: "empty file", in: "", want: Defaults()},
		{name: "comments only", in: "# nothing\n\n", want: Defaults()},
		{
			name: "values",
			in: "state_dir = \"/srv/fg\"\n[policy]\nallow_shared_fstypes = [\"fuse.sshfs\", \"fuse\"]\nabort_shared = true\n" +
				"[timeouts]\nverify = \"3s\"\ndocker = \"1500ms\"\n[watch]\ngrace = \"7s\"\nmax_rescues = 9\nrescue_timeout = \"0s\"\n[log]\nformat = \"json\"\nlevel = \"debug\"\nfile = \"/var/log/fg.log\"\n",
			want: withDefaults(func(c *Config) {
				c.StateDir = "/srv/fg"
				c.Policy = Policy{AllowSharedFSTypes: []string{"fuse.sshfs", "fuse"}, AbortShared: true, DedicatedPrefixes: []string{}}
				c.Timeouts.Verify = Duration(3 * time.Second)
				c.Timeouts.Docker = Duration(1500 * time.Millisecond)
				c.Watch.Grace = Duration(7 * time.Second)
				c.Watch.MaxRescues = 9
				c.Log = Log{Format: "json", Level: "debug", File: "/var/log/fg.log"}
			}),
		},
		{
			name: "unknown top-level key", in: "state_dri = \"/x\"\n",
			wantErr: []error{ErrInvalid, ErrUnknownKey}, wantMsg: []string{"F.toml", "state_dri"},
		},
		{
			name: "unknown nested key", in: "[watch]\ngrace = \"1s\"\ngracee = \"2s\"\n",
			wantErr: []error{ErrInvalid, ErrUnknownKey}, wantMsg: []string{"watch.gracee"},
		},
		{
			name: "unknown table", in: "[polcy]\nabort_shared = true\n",
			wantErr: []error{ErrUnknownKey}, wantMsg: []string{"polcy"},
		},
		{
			name: "dedicated prefixes", in: "[policy]\ndedicated_prefixes = [\"/var/lib/kubelet/pods\", \"/srv/kubelet/pods\"]\n",
			want: withDefaults(func(c *Config) {
				c.Policy.DedicatedPrefixes = []string{"/var/lib/kubelet/pods", "/srv/kubelet/pods"}
			}),
		},
		{
			name: "dedicated prefix not absolute", in: "[policy]\ndedicated_prefixes = [\"var/lib/kubelet/pods\"]\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"policy.dedicated_prefixes", "not an absolute path"},
		},
		{
			name: "dedicated prefix climbs out", in: "[policy]\ndedicated_prefixes = [\"/var/lib/kubelet/pods/../..\"]\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"policy.dedicated_prefixes", "not a clean path"},
		},
		{
			name: "dedicated prefix root", in: "[policy]\ndedicated_prefixes = [\"/\"]\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"policy.dedicated_prefixes"},
		},
		{
			name: "wrong type: string for bool", in: "[policy]\nabort_shared = \"yes\"\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"F.toml", "line 2", "abort_shared"},
		},
		{
			name: "wrong type: string for list", in: "[policy]\nallow_shared_fstypes = \"fuse.sshfs\"\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"allow_shared_fstypes"},
		},
		{
			name: "wrong type: table for string", in: "[state_dir]\nx = 1\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"state_dir"},
		},
		{
			name: "bad duration", in: "\n[watch]\ngrace = \"2 seconds\"\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"F.toml:3", "watch.grace", "2 seconds"},
		},
		{
			name: "duration without unit", in: "[timeouts]\nverify = 2\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"F.toml:2", "timeouts.verify"},
		},
		{
			name: "negative timeout", in: "[timeouts]\nrecover = \"-1s\"\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"F.toml:2", "timeouts.recover", "negative"},
		},
		{
			name: "zero timeout", in: "[timeouts]\nhook = \"0s\"\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"F.toml", "timeouts.hook", "positive"},
		},
		{
			name: "zero max_rescues", in: "[watch]\nmax_rescues = 0\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"watch.max_rescues"},
		},
		{
			name: "not a FUSE fs type", in: "[policy]\nallow_shared_fstypes = [\"sshfs\"]\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"policy.allow_shared_fstypes", `"sshfs"`},
		},
		{
			name: "empty FUSE subtype", in: "[policy]\nallow_shared_fstypes = [\"fuse.\"]\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"policy.allow_shared_fstypes"},
		},
		{
			name: "FUSE subtype with a space", in: "[policy]\nallow_shared_fstypes = [\"fuse.a b\"]\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"policy.allow_shared_fstypes"},
		},
		{
			name: "bad log format", in: "[log]\nformat = \"xml\"\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"log.format", "xml"},
		},
		{
			name: "bad log level", in: "[log]\nlevel = \"loud\"\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"log.level"},
		},
		{
			name: "empty state_dir", in: "state_dir = \"\"\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"state_dir"},
		},
		{
			name: "syntax error", in: "[watch\ngrace = \"1s\"\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"F.toml:", "table name"},
		},
		{
			name: "duplicate key", in: "[watch]\ngrace = \"1s\"\ngrace = \"2s\"\n",
			wantErr: []error{ErrInvalid}, wantMsg: []string{"F.toml:3", "grace"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in), "F.toml")
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("Parse = %+v\nwant %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", got)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			for _, e := range tt.wantErr {
				if !errors.Is(err, e) {
					t.Errorf("error %q is not %v", msg, e)
				}
			}
			for _, s := range tt.wantMsg {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not say %q", msg, s)
				}
			}
		})
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.toml")
	if _, err := Load(missing); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(missing) = %v, want ErrNotFound naming the file", err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrInvalid) {
		t.Errorf("Load(directory) = %v, want ErrInvalid", err)
	}
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("#\n"), maxFileSize), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); !errors.Is(err, ErrInvalid) {
		t.Errorf("Load(%d bytes) = %v, want ErrInvalid", 2*maxFileSize, err)
	}
}

func TestNode(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "fg.toml")
	if err := os.WriteFile(file, []byte("state_dir = \"/from/file\"\n[watch]\ngrace = \"9s\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	c, path, err := Node(file, env(nil))
	if err != nil || path != file || c.StateDir != "/from/file" || c.Watch.Grace.Std() != 9*time.Second {
		t.Errorf("Node(flag) = %+v, %q, %v", c, path, err)
	}
	c, path, err = Node("", env(map[string]string{EnvPath: file, "FUSEGUARD_STATE_DIR": "/from/env"}))
	if err != nil || path != file || c.StateDir != "/from/env" || c.Watch.Grace.Std() != 9*time.Second {
		t.Errorf("Node($%s) with $FUSEGUARD_STATE_DIR = %+v, %q, %v; want the file's grace and the env's state dir", EnvPath, c, path, err)
	}
	// The flag wins over the environment.
	other := filepath.Join(dir, "other.toml")
	if err := os.WriteFile(other, []byte("[watch]\ngrace = \"4s\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, path, err = Node(other, env(map[string]string{EnvPath: file}))
	if err != nil || path != other || c.Watch.Grace.Std() != 4*time.Second {
		t.Errorf("Node(flag) with $%s = %+v, %q, %v; want the flag's file", EnvPath, c, path, err)
	}
	for _, explicit := range []struct{ flag, env string }{{flag: filepath.Join(dir, "nope.toml")}, {env: filepath.Join(dir, "nope.toml")}} {
		if _, _, err := Node(explicit.flag, env(map[string]string{EnvPath: explicit.env})); !errors.Is(err, ErrNotFound) {
			t.Errorf("Node with a missing file named explicitly (%+v) = %v, want ErrNotFound", explicit, err)
		}
	}
	if _, err := os.Stat(DefaultPath); errors.Is(err, os.ErrNotExist) {
		c, path, err := Node("", env(nil))
		if err != nil || path != "" || !reflect.DeepEqual(c, Defaults()) {
			t.Errorf("Node without %s = %+v, %q, %v; want the defaults", DefaultPath, c, path, err)
		}
	}
}

func TestWriteTOMLRoundTrip(t *testing.T) {
	c := Defaults()
	c.Policy.AllowSharedFSTypes = []string{"fuse.sshfs"}
	c.Watch.RescueTimeout = Duration(1234 * time.Millisecond)
	c.Log.File = "/var/log/fuseguard.log"
	checkRoundTrip(t, c)
}

// checkRoundTrip fails t unless WriteTOML writes c as a file Parse reads
// back to c.
func checkRoundTrip(t *testing.T, c Config) {
	t.Helper()
	var b bytes.Buffer
	if err := c.WriteTOML(&b); err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b.Bytes(), "written")
	if err != nil {
		t.Fatalf("Parse(WriteTOML(c)) = %v\n%s", err, b.String())
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip = %+v, want %+v", back, c)
	}
}

func TestOptions(t *testing.T) {
	c := Defaults()
	c.Policy = Policy{AllowSharedFSTypes: []string{"fuse.x"}, AbortShared: true}
	c.Timeouts.Verify = Duration(3 * time.Second)
	c.Timeouts.Recover = Duration(4 * time.Second)
	c.Watch.Grace = Duration(5 * time.Second)
	ko := c.KillerOptions()
	if ko.VerifyTimeout != 3*time.Second || ko.RecoverTimeout != 4*time.Second || ko.DiagnoseTimeout != c.Timeouts.Diagnose.Std() ||
		!ko.Policy.AbortShared || !reflect.DeepEqual(ko.Policy.AllowSharedFSTypes, []string{"fuse.x"}) {
		t.Errorf("KillerOptions = %+v", ko)
	}
	// The options own their list: changing it does not change c.
	ko.Policy.AllowSharedFSTypes[0] = "fuse.y"
	if c.Policy.AllowSharedFSTypes[0] != "fuse.x" {
		t.Error("KillerOptions shares the policy's list with the configuration")
	}
}

// TestKillerPolicyDedicated: the dedicated class reaches the killer's
// policy with the state directory's records, and only when it is on.
func TestKillerPolicyDedicated(t *testing.T) {
	c := Defaults()
	if p := c.KillerPolicy(); len(p.DedicatedPrefixes) != 0 || p.Records != nil {
		t.Errorf("default policy %+v: want the dedicated class off", p)
	}
	c.StateDir = "/srv/fg"
	c.Policy.DedicatedPrefixes = []string{"/var/lib/kubelet/pods"}
	for name, p := range map[string]killer.Policy{"KillerPolicy": c.KillerPolicy(), "KillerOptions": c.KillerOptions().Policy} {
		if !reflect.DeepEqual(p.DedicatedPrefixes, c.Policy.DedicatedPrefixes) || p.Records == nil || p.Records.Dir != c.StateDir {
			t.Errorf("%s: %+v, want prefixes %v and the records of %s", name, p, c.Policy.DedicatedPrefixes, c.StateDir)
		}
	}
}
