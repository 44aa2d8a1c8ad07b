// Command fusefixture builds the wedged containers of fuseguard's tests out
// of real kernel objects; see package test/fusefixture for its subcommands
// and the event lines it prints. Built with CGO_ENABLED=0 it is static and
// runs in a busybox image too.
package main

import (
	"os"

	"github.com/fuseguard/fuseguard/test/fusefixture"
)

func main() { os.Exit(fusefixture.Main(os.Args[1:])) }
