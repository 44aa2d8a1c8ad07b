//go:build !fuseguard_lean

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/fuseguard/fuseguard/config"
	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/internal/doctor"
)

// cmdDoctor checks whether this node can be protected; it exits non-zero
// when a check fails.
func cmdDoctor(ctx context.Context, a *app, args []string) int {
	var (
		asJSON                                                bool
		dockerConfig, containerdConfig, fusectlDir, sysctlDir string
		hooksDirs                                             []string
	)
	fs, c, code, ok := a.command("doctor", args, func(fs *flag.FlagSet, c *config.Config) {
		bindStateDir(fs, c)
		fs.BoolVar(&asJSON, "json", false, "print JSON")
		fs.StringVar(&dockerConfig, "docker-config", doctor.DefaultDockerConfig, "Docker's daemon.json")
		fs.StringVar(&containerdConfig, "containerd-config", doctor.DefaultContainerdConfig, "containerd's config.toml")
		fs.Func("hooks-dir", "OCI hooks directory, repeatable (default "+strings.Join(doctor.DefaultHooksDirs(), " and ")+")", func(v string) error {
			hooksDirs = append(hooksDirs, v)
			return nil
		})
		fs.StringVar(&fusectlDir, "fusectl-dir", fuseconn.DefaultFusectlDir, "where fusectl is mounted")
		fs.StringVar(&sysctlDir, "fuse-sysctl-dir", doctor.DefaultFuseSysctlDir, "the kernel's FUSE sysctls")
	})
	if !ok {
		return code
	}
	if fs.NArg() != 0 {
		return a.fail(exitUsage, "doctor: takes no arguments")
	}
	r := doctor.Run(ctx, doctor.Options{
		StateDir:         c.StateDir,
		FusectlDir:       fusectlDir,
		FuseSysctlDir:    sysctlDir,
		DockerConfig:     dockerConfig,
		ContainerdConfig: containerdConfig,
		HooksDirs:        hooksDirs,
	})
	if asJSON {
		if err := a.printJSON(r); err != nil {
			return a.fail(exitFailure, "doctor: %v", err)
		}
	} else {
		printDoctor(a.stdout, r)
	}
	if !r.OK {
		return exitFailure
	}
	return exitOK
}

// printDoctor prints one line per check, and what to do under each that
// is not ok. The checks escape what they quote from the node.
func printDoctor(w io.Writer, r doctor.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Status, c.Name, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(tw, "\t\t-> %s\n", c.Fix)
		}
	}
	tw.Flush()
	verdict := "this node can be protected"
	if !r.OK {
		verdict = "this node cannot be protected until the failures are fixed"
	}
	fmt.Fprintf(w, "%d ok, %d warn, %d fail: %s\n", r.Count(doctor.OK), r.Count(doctor.Warn), r.Count(doctor.Fail), verdict)
}
